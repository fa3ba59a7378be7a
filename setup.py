"""takeback's one C extension; everything else about the package is in pyproject.toml.

`optional=True`: where no C compiler is available the install still succeeds, and photos are decoded by Pillow
alone (`takeback.media.jpeg_dc.available()` says which).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "takeback.media._jpeg_dc",
            sources=["src/takeback/media/_jpeg_dc.c"],
            optional=True,
        )
    ]
)
