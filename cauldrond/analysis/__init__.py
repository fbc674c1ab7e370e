"""Analysis of an experiment's images, as plain data: convergence over steps, timings, flat exports, plots.

Submodules are imported where used rather than here: convergence needs scikit-image and plot needs matplotlib,
and neither should slow down every import of the package.
"""
