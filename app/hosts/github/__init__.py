"""GitHub (github.com, GitHub Enterprise Server): ``client.GitHubHost`` is its ``GitHost``."""
