"""tfdenoise: TinyDenoiser speech enhancement -> quantized TFLite -> modeled multi-core MCU."""
from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="tfdenoise",
    version="0.1.0",
    description="Train, quantize (mixed FP16-INT8) and cost-model RNN speech denoisers for MCUs",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tfdenoise*", "converters*", "targets*"]),
    package_data={
        "tfdenoise": ["pretrained/*/*", "pretrained/*/tflite/*", "samples/*", "samples/*/*", "samples/*/*/*"],
        "converters": ["recipes/*.json", "calib/*.wav", "calib/*.md"],
        "targets": ["boards/*.toml", "schema/*"],
    },
    install_requires=[
        line.split("#")[0].strip()
        for line in Path(__file__).with_name("requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip() and not line.startswith("pytest")
    ],
    extras_require={"tflite-runtime": ["tflite-runtime==2.14.0"], "test": ["pytest>=8"]},
    entry_points={"console_scripts": ["tfdenoise=tfdenoise.cli:main"]},
)
