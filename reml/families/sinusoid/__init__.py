"""Sinusoid regression (Finn et al. 2017, Sec. 5.1): y = A·sin(x − φ), and unrelated task families."""
