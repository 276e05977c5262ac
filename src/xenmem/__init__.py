"""xenmem: Xen host memory management (xapi's accounting, squeezed's ballooning)."""

__version__ = "0.1.0"
