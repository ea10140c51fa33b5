"""The students' library for the VAE course: data, training, plotting, checks and widgets.

Notebooks import modules by name: `from utils import data, train, plot, checks`.
Nothing in this package holds an exercise's answer. The instructor and TA tooling lives in `instructor/`.
"""
