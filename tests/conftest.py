import matplotlib

matplotlib.use("Agg")  # unit tests draw headless; notebooks keep their inline backend
