"""takeback's C extensions; everything else about the package is in pyproject.toml.

`optional=True`: where no C compiler is available the install still succeeds, photos are decoded by Pillow alone
(`takeback.media.jpeg_dc.available()` says which) and video frames are hashed by numpy alone
(`takeback.signals.pdq_fast.NATIVE_PASSES`).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "takeback.media._jpeg_dc",
            sources=["src/takeback/media/_jpeg_dc.c"],
            optional=True,
        ),
        Extension(
            "takeback.signals._pdq_frame",
            sources=["src/takeback/signals/_pdq_frame.c"],
            optional=True,
        ),
    ]
)
