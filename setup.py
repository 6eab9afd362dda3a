from setuptools import find_packages, setup

setup(
    name="epigeo",
    version="0.1.0",
    description="Calibration-free, self-supervised multi-view 3D human pose: batched multi-view geometry, "
    "static-rig reconstruction and pseudo-label training.",
    python_requires=">=3.11",
    packages=find_packages(include=["geometry", "geometry.*", "pose", "pose.*", "learn", "learn.*",
                                    "benchmarks", "benchmarks.*"]),
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "numba>=0.59",
        "opencv-python-headless>=4.8",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "plotly>=5.0",   # report.html: the 3D view, with plotly.js inlined (works offline)
    ],
    extras_require={
        # torch: install the CPU wheel first (`pip install torch==2.13.0`); this range accepts it.
        "gpu": ["torch>=2.1,<3", "kornia>=0.7"],
        "bench": ["poselib", "pycolmap"],
        "dev": ["pytest>=7", "hypothesis>=6", "onnx"],   # onnx: torch.onnx.export in tests
        # pose.detect's backends: LiteRT for BlazePose (.tflite), onnxruntime for ONNX models
        "detect": ["ai-edge-litert", "onnxruntime"],
        # learn.scale: sessions as tasks on a Dask LocalCluster or any Dask cluster
        "dask": ["dask[distributed]"],
    },
    entry_points={"console_scripts": ["epigeo=learn.cli:main"]},
)
