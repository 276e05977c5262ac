"""`python -m bench`: every benchmark."""

from bench import squeezer

squeezer.main()
