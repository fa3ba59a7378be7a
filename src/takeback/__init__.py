"""takeback: take control back of images and videos published without consent."""

__version__ = "0.1.0"
