"""`python -m bench` (make bench): every benchmark."""

from bench import server

if __name__ == "__main__":
    server.main()
