"""GitLab (gitlab.com, self-managed instances): ``client.GitLabHost`` is its ``GitHost``."""
