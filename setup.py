from setuptools import find_packages, setup

setup(
    name="memplan",
    version="0.1.0",
    description="Safe memory-arena planning for compute graphs running on several CUDA streams",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["memplan", "memplan.*", "runtime", "runtime.*"]),
    package_data={"runtime": ["kernels/*.cu"]},
    install_requires=["numpy>=1.23", "ortools>=9.8", "sortedcontainers>=2.4"],
    extras_require={
        "cuda": ["pycuda>=2024.1"],
        # CUDA graphs, PDL launches and the wgmma GEMMs go through cuda.bindings (pycuda has no graph API). Its 12.x
        # line runs on every CUDA 12 driver (525.60.13 on) and on R580; 13.x, which an unpinned install picks, needs
        # R580. torch's CUDA 13 wheels bring 13.x themselves: with the torch extra, `cuda` alone (docs/runtime.md)
        "graphs": ["pycuda>=2024.1", "cuda-bindings>=12.8,<13"],
        "dev": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6.80", "ruff>=0.4", "onnxruntime>=1.16"],
        "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],   # (onnxruntime: its ops are sized by its inference)
        "plot": ["matplotlib>=3.6"],
        "torch": ["torch>=2.2", "transformers>=4.45", "torchvision>=0.17"],   # (torchvision: runtime.aten.detection)
    },
    entry_points={"console_scripts": ["memplan=memplan.cli:main"]},
)
