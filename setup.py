"""tfdenoise: TinyDenoiser speech enhancement -> quantized TFLite -> modeled multi-core MCU."""
from pathlib import Path

from setuptools import find_packages, setup

SUBPACKAGES = ("converters", "targets")

setup(
    name="tfdenoise",
    version="0.1.0",
    description="Train, quantize (mixed FP16-INT8) and cost-model RNN speech denoisers for MCUs",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # converters/ and targets/ are folders of the repository but subpackages of tfdenoise once
    # installed (tfdenoise.converters, tfdenoise.targets): no generic top-level names in
    # site-packages.
    packages=find_packages(include=["tfdenoise", "tfdenoise.*"]) + [
        f"tfdenoise.{p}" for p in find_packages(include=list(SUBPACKAGES) + [f"{s}.*" for s in SUBPACKAGES])],
    package_dir={f"tfdenoise.{s}": s for s in SUBPACKAGES},
    package_data={
        "tfdenoise": ["pretrained/*/*", "pretrained/*/tflite/*", "samples/*", "samples/*/*", "samples/*/*/*"],
        "tfdenoise.converters": ["recipes/*.json", "calib/*.wav", "calib/*.md"],
        "tfdenoise.targets": ["boards/*.toml", "schema/*"],
    },
    install_requires=[
        line.split("#")[0].strip()
        for line in Path(__file__).with_name("requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip() and not line.startswith("pytest")
    ],
    extras_require={"tflite-runtime": ["tflite-runtime==2.14.0"], "test": ["pytest>=8"]},
    entry_points={"console_scripts": ["tfdenoise=tfdenoise.cli:main"]},
)
