from tests.support.live import live_servers, pytest_collection_modifyitems, repo_endpoints

__all__ = ["live_servers", "pytest_collection_modifyitems", "repo_endpoints"]
