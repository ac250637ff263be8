"""Optical flow: file I/O, resizing, colour coding and estimation backends.

Flow fields are ``(H, W, 2)`` float32 arrays in pixels of their own resolution (channel 0 = u,
horizontal; channel 1 = v, vertical), the layout OpenCV uses. Images given to the backends are
``(H, W, 3)`` uint8 BGR (as ``cv2.imread`` returns them) or ``(H, W)`` uint8 grayscale.

Backends are registered in :data:`FLOW_BACKENDS` and picked by the ``flow`` config group's
``name`` key: ``dis`` (the default), ``farneback``, ``tvl1``, ``deepflow``, ``rlof``, ``pcaflow``
(OpenCV contrib) and ``raft`` (optional, torchvision + a local weights file). ``precomputed``
flows (a folder of ``.flo`` files per sequence) are read with :func:`load_precomputed_flow`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Tuple

import cv2
import numpy as np

from nims.registry import Registry

FlowEstimator = Callable[[np.ndarray, np.ndarray], np.ndarray]
FLOW_BACKENDS: Registry = Registry("flow backend")


def check_flow(flow: np.ndarray, name: str = "flow") -> np.ndarray:
    """Validate a flow field and return it as contiguous float32.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Displacements in pixels.
    name : str
        What to call the field in error messages (a file name, a config key).

    Raises
    ------
    ValueError
        If the shape is not ``(H, W, 2)`` with ``H, W >= 1`` or any value is NaN or infinite.
    """
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[0] < 1 or flow.shape[1] < 1:
        raise ValueError(
            f"{name}: expected a flow field of shape (H, W, 2) in pixels, got shape {flow.shape}"
        )
    if not np.issubdtype(flow.dtype, np.number):
        raise ValueError(f"{name}: expected a numeric flow field, got dtype {flow.dtype}")
    flow = np.ascontiguousarray(flow, dtype=np.float32)
    finite = np.isfinite(flow)
    if not finite.all():
        bad = np.argwhere(~finite.all(axis=2))
        raise ValueError(
            f"{name}: {len(bad)} pixel(s) hold NaN or infinite flow (first at row {bad[0][0]}, "
            f"column {bad[0][1]}); fix or re-estimate the flow (e.g. replace occluded pixels)"
        )
    return flow


FLO_TAG = 202021.25  # the float32 that opens every Middlebury .flo file ("PIEH")


def _check_flo_header(path: Path) -> None:
    """Refuse a ``.flo`` whose header does not match its length (a truncated file, or a header
    claiming a size that would make the reader allocate gigabytes)."""
    with path.open("rb") as handle:
        header = handle.read(12)
    if len(header) < 12:
        raise ValueError(f"{path} is not a readable Middlebury .flo file (no 12-byte header)")
    tag = np.frombuffer(header[:4], "<f4")[0]
    width, height = (int(v) for v in np.frombuffer(header[4:], "<i4"))
    expected = 12 + 8 * width * height
    if tag != FLO_TAG or width <= 0 or height <= 0 or path.stat().st_size != expected:
        raise ValueError(f"{path} is not a readable Middlebury .flo file: its header says "
                         f"{width}x{height} ({expected} bytes) but the file has "
                         f"{path.stat().st_size} bytes, or the tag is wrong; re-create it")


def read_flow(path) -> np.ndarray:
    """Read a Middlebury ``.flo`` or a numpy ``.npy`` flow file as ``(H, W, 2)`` float32 pixels."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"flow file {path} does not exist")
    if path.suffix == ".flo":
        _check_flo_header(path)
        flow = cv2.readOpticalFlow(str(path))
        if flow is None:
            raise ValueError(f"{path} is not a readable Middlebury .flo file "
                             "(bad tag or truncated)")
    elif path.suffix == ".npy":
        flow = np.load(path, allow_pickle=False)
    else:
        raise ValueError(f"{path}: unknown flow file type {path.suffix!r}; use .flo or .npy")
    return check_flow(flow, name=str(path))


def write_flow(path, flow: np.ndarray) -> Path:
    """Write a ``(H, W, 2)`` flow field as Middlebury ``.flo`` or ``.npy`` (by the suffix)."""
    path = Path(path)
    flow = check_flow(flow, name=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".flo":
        if not cv2.writeOpticalFlow(str(path), flow):
            raise OSError(f"could not write flow file {path}")
    elif path.suffix == ".npy":
        np.save(path, flow)
    else:
        raise ValueError(f"{path}: unknown flow file type {path.suffix!r}; use .flo or .npy")
    return path


def resize_flow(flow: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize a flow field to ``size = (height, width)`` and rescale its vectors to match.

    A displacement of ``u`` pixels at width ``W`` is ``u * W' / W`` pixels at width ``W'``
    (likewise ``v`` with the heights): resizing the grid alone would leave vectors in the units
    of the old resolution.

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Flow in pixels at resolution ``H x W``.
    size : (int, int)
        Target ``(height, width)``.

    Returns
    -------
    array, shape (height, width, 2)
        Flow in pixels at the target resolution (bilinear interpolation; area averaging when
        shrinking).
    """
    flow = check_flow(flow)
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"resize_flow: target size must be positive, got {size}")
    old_height, old_width = flow.shape[:2]
    if (height, width) == (old_height, old_width):
        return flow.copy()
    shrinking = height * width < old_height * old_width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(flow, (width, height), interpolation=interpolation)
    resized = resized.reshape(height, width, 2)
    resized[..., 0] *= width / old_width
    resized[..., 1] *= height / old_height
    return resized


def _make_colour_wheel() -> np.ndarray:
    """The Middlebury colour wheel (Baker et al. 2007): 55 RGB colours, shape (55, 3)."""
    segments = [(15, 0, 1), (6, 1, 0), (4, 1, 2), (11, 2, 1), (13, 2, 0), (6, 0, 2)]
    # Each segment ramps one channel while another is held at 255: (length, held, ramped),
    # alternating rising and falling ramps as in the reference implementation.
    wheel = np.zeros((sum(s[0] for s in segments), 3))
    start = 0
    for index, (length, held, ramped) in enumerate(segments):
        ramp = np.floor(255 * np.arange(length) / length)
        block = wheel[start : start + length]
        block[:, held] = 255
        block[:, ramped] = ramp if index % 2 == 0 else 255 - ramp
        start += length
    return wheel


_COLOUR_WHEEL = _make_colour_wheel()


def flow_to_color(flow: np.ndarray, max_magnitude: Optional[float] = None) -> np.ndarray:
    """Colour-code a flow field with the standard Middlebury wheel (hue = direction).

    Parameters
    ----------
    flow : array, shape (H, W, 2)
        Flow in pixels.
    max_magnitude : float, optional
        Magnitude (pixels) mapped to full saturation; defaults to the field's largest magnitude.

    Returns
    -------
    array, shape (H, W, 3), uint8 RGB
        White for zero motion, saturated colours for ``max_magnitude``.
    """
    flow = check_flow(flow)
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    magnitude = np.hypot(u, v)
    scale = float(magnitude.max()) if max_magnitude is None else float(max_magnitude)
    if scale <= 0:
        return np.full(flow.shape[:2] + (3,), 255, dtype=np.uint8)
    u, v, radius = u / scale, v / scale, magnitude / scale
    n_colours = len(_COLOUR_WHEEL)
    angle = np.arctan2(-v, -u) / np.pi
    position = (angle + 1) / 2 * (n_colours - 1)
    index0 = np.floor(position).astype(np.int64)
    index1 = (index0 + 1) % n_colours
    fraction = (position - index0)[..., None]
    colour = ((1 - fraction) * _COLOUR_WHEEL[index0] + fraction * _COLOUR_WHEEL[index1]) / 255
    inside = (radius <= 1)[..., None]
    colour = np.where(inside, 1 - radius[..., None] * (1 - colour), colour * 0.75)
    return np.floor(255 * colour).astype(np.uint8)


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
def dis_estimator(preset: str = "medium", variational_refinement_iterations: Optional[int] = None,
                  **_: object) -> FlowEstimator:
    """OpenCV's Dense Inverse Search (Kroeger et al. 2016): fast, the default backend."""
    presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
               "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
    if preset not in presets:
        raise ValueError(f"flow.preset must be one of {sorted(presets)}, got {preset!r}")
    solver = cv2.DISOpticalFlow_create(presets[preset])
    if variational_refinement_iterations is not None:
        solver.setVariationalRefinementIterations(int(variational_refinement_iterations))
    return _solver_estimator(solver)


@FLOW_BACKENDS.register("farneback")
def farneback_estimator(pyr_scale: float = 0.5, levels: int = 5, winsize: int = 15,
                        iterations: int = 3, poly_n: int = 7, poly_sigma: float = 1.5,
                        **_: object) -> FlowEstimator:
    """Farneback's polynomial-expansion flow (OpenCV core)."""

    def estimate(image0: np.ndarray, image1: np.ndarray) -> np.ndarray:
        _check_pair(image0, image1)
        return cv2.calcOpticalFlowFarneback(
            _to_gray(image0, "image0"), _to_gray(image1, "image1"), None,
            pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, 0)

    return estimate


def _require_contrib(backend: str) -> None:
    if not hasattr(cv2, "optflow"):
        raise ImportError(
            f"flow={backend} needs OpenCV's contrib modules: install "
            "opencv-contrib-python-headless (and uninstall opencv-python / "
            "opencv-python-headless, which shadow it)"
        )


@FLOW_BACKENDS.register("tvl1")
def tvl1_estimator(tau: float = 0.25, lambda_: float = 0.15, theta: float = 0.3,
                   scales: int = 5, warps: int = 5, epsilon: float = 0.01,
                   **_: object) -> FlowEstimator:
    """Dual TV-L1 (Zach et al. 2007), OpenCV contrib: sharp boundaries, slow."""
    _require_contrib("tvl1")
    solver = cv2.optflow.DualTVL1OpticalFlow_create(
        tau=tau, lambda_=lambda_, theta=theta, nscales=scales, warps=warps, epsilon=epsilon)
    return _solver_estimator(solver)


@FLOW_BACKENDS.register("deepflow")
def deepflow_estimator(**_: object) -> FlowEstimator:
    """DeepFlow (Weinzaepfel et al. 2013), OpenCV contrib: accurate, slow."""
    _require_contrib("deepflow")
    solver = cv2.optflow.createOptFlow_DeepFlow()
    return _solver_estimator(solver)


@FLOW_BACKENDS.register("rlof")
def rlof_estimator(**_: object) -> FlowEstimator:
    """Dense robust local optical flow (Senst et al.), OpenCV contrib; needs colour frames."""
    _require_contrib("rlof")
    solver = cv2.optflow.createOptFlow_DenseRLOF()
    return _solver_estimator(solver, colour=True)


@FLOW_BACKENDS.register("pcaflow")
def pcaflow_estimator(**_: object) -> FlowEstimator:
    """PCA-Flow (Wulff & Black 2015), OpenCV contrib: smooth layered prior, fast."""
    _require_contrib("pcaflow")
    solver = cv2.optflow.createOptFlow_PCAFlow()
    return _solver_estimator(solver)


@FLOW_BACKENDS.register("raft")
def raft_estimator(weights: Optional[str] = None, iterations: int = 20, device: str = "cpu",
                   **_: object) -> FlowEstimator:
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

    def to_tensor(image: np.ndarray) -> "torch.Tensor":
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


def load_precomputed_flow(root, sequence: str, index: int) -> np.ndarray:
    """Read the precomputed forward flow of frame ``index`` -> ``index + 1`` of a sequence.

    The layout is the one the paper's authors distribute: ``<root>/<sequence>/NNNNN.flo``
    (``.npy`` accepted too), ``NNNNN`` the zero-padded index of the first frame of the pair.
    """
    folder = Path(root) / sequence
    for suffix in (".flo", ".npy"):
        path = folder / f"{index:05d}{suffix}"
        if path.is_file():
            return read_flow(path)
    raise FileNotFoundError(
        f"no precomputed flow for {sequence} frame {index}: expected {folder / f'{index:05d}.flo'} "
        "(set flow.root to the folder holding one sub-folder of .flo files per sequence)"
    )
