"""``python -m pipeline`` runs the siteplan CLI."""

from pipeline.cli import main

if __name__ == "__main__":
    main()
