"""Optical flow estimation backends: ``estimate(image0, image1) -> (H, W, 2)`` flow in pixels.

Images are ``(H, W, 3)`` uint8 BGR (as ``cv2.imread`` returns them) or ``(H, W)`` uint8
grayscale. Backends are registered in :data:`FLOW_BACKENDS` and picked by the ``flow`` config
group's ``name`` key: ``dis`` (the default), ``farneback``, ``tvl1``, ``deepflow``, ``rlof``,
``pcaflow`` (OpenCV contrib) and ``raft`` (optional, torchvision + a local weights file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from nims.flow import check_flow
from nims.registry import Registry

FlowEstimator = Callable[[np.ndarray, np.ndarray], np.ndarray]
FLOW_BACKENDS: Registry = Registry("flow backend")


def _to_gray(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 2:
        return image
    raise ValueError(f"{name}: expected an (H, W, 3) BGR or (H, W) gray image, got {image.shape}")


def _to_bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def _check_pair(image0: np.ndarray, image1: np.ndarray) -> None:
    if image0.shape[:2] != image1.shape[:2]:
        raise ValueError(
            f"flow needs two frames of the same size, got {image0.shape[:2]} and {image1.shape[:2]}"
        )
    for name, image in (("image0", image0), ("image1", image1)):
        if image.dtype != np.uint8:
            raise ValueError(f"{name}: expected uint8 pixels, got {image.dtype}")


def _solver_estimator(solver, colour: bool = False) -> FlowEstimator:
    """``estimate(image0, image1)`` around an OpenCV dense optical flow object."""

    def estimate(image0: np.ndarray, image1: np.ndarray) -> np.ndarray:
        _check_pair(image0, image1)
        if colour:
            return solver.calc(_to_bgr(image0), _to_bgr(image1), None)
        return solver.calc(_to_gray(image0, "image0"), _to_gray(image1, "image1"), None)

    return estimate


@FLOW_BACKENDS.register("dis")
def dis_estimator(
    preset: str = "medium",
    variational_refinement_iterations: int | None = None,
    finest_scale: int | None = None,
    patch_size: int | None = None,
    patch_stride: int | None = None,
    **_: object,
) -> FlowEstimator:
    """OpenCV's Dense Inverse Search (Kroeger et al. 2016): fast, the default backend.

    ``None`` keeps the preset's value; ``finest_scale=0`` estimates at full resolution (the
    medium preset stops at half), which small objects (crowd walkers) need, with smaller patches
    (``patch_size``, ``patch_stride`` in pixels).
    """
    presets = {
        "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }
    if preset not in presets:
        raise ValueError(f"flow.preset must be one of {sorted(presets)}, got {preset!r}")
    solver = cv2.DISOpticalFlow_create(presets[preset])
    for value, setter in (
        (variational_refinement_iterations, solver.setVariationalRefinementIterations),
        (finest_scale, solver.setFinestScale),
        (patch_size, solver.setPatchSize),
        (patch_stride, solver.setPatchStride),
    ):
        if value is not None:
            setter(int(value))
    return _solver_estimator(solver)


@FLOW_BACKENDS.register("farneback")
def farneback_estimator(
    pyr_scale: float = 0.5,
    levels: int = 5,
    winsize: int = 15,
    iterations: int = 3,
    poly_n: int = 7,
    poly_sigma: float = 1.5,
    **_: object,
) -> FlowEstimator:
    """Farneback's polynomial-expansion flow (OpenCV core)."""

    def estimate(image0: np.ndarray, image1: np.ndarray) -> np.ndarray:
        _check_pair(image0, image1)
        return cv2.calcOpticalFlowFarneback(
            _to_gray(image0, "image0"),
            _to_gray(image1, "image1"),
            None,
            pyr_scale,
            levels,
            winsize,
            iterations,
            poly_n,
            poly_sigma,
            0,
        )

    return estimate


def _require_contrib(backend: str) -> None:
    if not hasattr(cv2, "optflow"):
        raise ImportError(
            f"flow={backend} needs OpenCV's contrib modules: install "
            "opencv-contrib-python-headless (and uninstall opencv-python / "
            "opencv-python-headless, which shadow it)"
        )


@FLOW_BACKENDS.register("tvl1")
def tvl1_estimator(
    tau: float = 0.25,
    lambda_: float = 0.15,
    theta: float = 0.3,
    scales: int = 5,
    warps: int = 5,
    epsilon: float = 0.01,
    **_: object,
) -> FlowEstimator:
    """Dual TV-L1 (Zach et al. 2007), OpenCV contrib: sharp boundaries, slow."""
    _require_contrib("tvl1")
    solver = cv2.optflow.DualTVL1OpticalFlow_create(
        tau=tau, lambda_=lambda_, theta=theta, nscales=scales, warps=warps, epsilon=epsilon
    )
    return _solver_estimator(solver)


def _contrib_estimator(backend: str, factory: str, colour: bool = False) -> FlowEstimator:
    """The OpenCV contrib solver ``cv2.optflow.<factory>()`` as an estimator."""
    _require_contrib(backend)
    return _solver_estimator(getattr(cv2.optflow, factory)(), colour)


@FLOW_BACKENDS.register("deepflow")
def deepflow_estimator(**_: object) -> FlowEstimator:
    """DeepFlow (Weinzaepfel et al. 2013), OpenCV contrib: accurate, slow."""
    return _contrib_estimator("deepflow", "createOptFlow_DeepFlow")


@FLOW_BACKENDS.register("rlof")
def rlof_estimator(**_: object) -> FlowEstimator:
    """Dense robust local optical flow (Senst et al.), OpenCV contrib; needs colour frames."""
    return _contrib_estimator("rlof", "createOptFlow_DenseRLOF", colour=True)


@FLOW_BACKENDS.register("pcaflow")
def pcaflow_estimator(**_: object) -> FlowEstimator:
    """PCA-Flow (Wulff & Black 2015), OpenCV contrib: smooth layered prior, fast."""
    return _contrib_estimator("pcaflow", "createOptFlow_PCAFlow")


@FLOW_BACKENDS.register("raft")
def raft_estimator(
    weights: str | None = None, iterations: int = 20, device: str = "cpu", **_: object
) -> FlowEstimator:
    """RAFT (Teed & Deng 2020) through torchvision, from a local weights file.

    Needs the optional extra ``pip install -r requirements-raft.txt`` and a ``raft_large``
    state dict on disk (``flow.weights=<path>``); nothing is downloaded at run time.
    """
    if not weights:
        raise FileNotFoundError(
            "flow=raft needs a local weights file: set flow.weights=<path to raft_large .pth> "
            "(torchvision's raft_large_C_T_SKHT_V2 state dict); nothing is downloaded at run time"
        )
    weights_path = Path(weights).expanduser()
    if not weights_path.is_file():
        raise FileNotFoundError(
            f"RAFT weights not found at {weights_path}: download torchvision's "
            "raft_large_C_T_SKHT_V2 state dict on a machine with internet and put it there, "
            "or point flow.weights at it"
        )
    try:
        import torch
        from torchvision.models.optical_flow import raft_large
    except Exception as error:  # torchvision fails with RuntimeError too, not only ImportError
        raise ImportError(
            "flow=raft needs torchvision matching your torch: pip install -r requirements-raft.txt "
            f"({type(error).__name__}: {error})"
        ) from error
    model = raft_large(weights=None, progress=False)
    model.load_state_dict(torch.load(weights_path, map_location=device, weights_only=True))
    model = model.eval().to(device)

    def to_tensor(image: np.ndarray) -> torch.Tensor:
        rgb = cv2.cvtColor(_to_bgr(image), cv2.COLOR_BGR2RGB)
        tensor = torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 127.5 - 1.0
        height, width = tensor.shape[-2:]
        # RAFT needs sides divisible by 8; replicate-pad and crop the flow back.
        pad = (0, (-width) % 8, 0, (-height) % 8)
        return torch.nn.functional.pad(tensor, pad, mode="replicate").to(device)

    def estimate(image0: np.ndarray, image1: np.ndarray) -> np.ndarray:
        _check_pair(image0, image1)
        height, width = image0.shape[:2]
        with torch.no_grad():
            flows = model(to_tensor(image0), to_tensor(image1), num_flow_updates=iterations)
        return flows[-1][0, :, :height, :width].permute(1, 2, 0).cpu().numpy()

    return estimate


def make_flow_estimator(flow_cfg) -> FlowEstimator:
    """Build the backend a ``flow`` config group entry names: ``estimate(image0, image1)``.

    Parameters
    ----------
    flow_cfg : mapping
        The ``flow`` config node: ``name`` plus the backend's keyword arguments.

    Returns
    -------
    callable
        ``estimate(image0, image1) -> (H, W, 2)`` float32 forward flow (frame 0 -> frame 1) in
        pixels at the images' resolution.
    """
    options = dict(flow_cfg)
    name = options.pop("name")
    if name == "precomputed":
        raise ValueError(
            "flow=precomputed reads flows from flow.root with load_precomputed_flow(); "
            "it does not estimate flow from images"
        )
    backend = FLOW_BACKENDS.get(name)
    estimator = backend(**options)

    def checked(image0: np.ndarray, image1: np.ndarray) -> np.ndarray:
        return check_flow(estimator(image0, image1), name=f"flow={name} output")

    return checked
