"""store-availability: badges that promise only what the shelf can keep."""
