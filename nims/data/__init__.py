"""Datasets: synthetic scenes, DAVIS-2016 layout."""
