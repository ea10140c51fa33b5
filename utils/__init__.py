"""Shared code for the VAE course: data, training, plotting, checks and the release tool.

Notebooks import modules by name: `from utils import data, train, plot, checks`.
Nothing in this package holds an exercise's answer.
"""
