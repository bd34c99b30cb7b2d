"""Packaging of micado-client."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = {}
exec((HERE / "micado" / "_version.py").read_text(), VERSION)

setup(
    name="micado-client",
    version=VERSION["__version__"],
    description="Create MiCADO masters on clouds and manage the applications running on them",
    long_description=(HERE / "README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["micado", "micado.*"]),
    include_package_data=True,
    package_data={"micado": ["py.typed"], "micado.testing": ["playbook/**/*", "examples/*"]},
    install_requires=[
        "requests>=2.32,<3",
        "ruamel.yaml>=0.18,<0.20",
        "pycryptodome>=3.20,<5",
        "python-novaclient>=18,<19",
        "openstacksdk>=4,<5",
        "ansible>=11,<13",
    ],
    extras_require={
        "ec2": ["boto3>=1.34,<2"],
        "testing": ["werkzeug>=3,<4", "boto3>=1.34,<2", "moto[server]>=5.0,<6"],
        "test": ["werkzeug>=3,<4", "boto3>=1.34,<2", "moto[server]>=5.0,<6", "pytest>=8,<10", "hypothesis>=6.100,<7",
                 "mypy>=1.15,<2", "ruff>=0.12,<1", "types-requests>=2.32,<3", "boto3-stubs[ec2]>=1.34,<2"],
        "docs": ["sphinx>=8,<10"],
    },
    entry_points={
        "console_scripts": ["micado = micado.cli:main"],
        "pytest11": ["micado = micado.testing.pytest_plugin"],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: System :: Distributed Computing",
    ],
)
