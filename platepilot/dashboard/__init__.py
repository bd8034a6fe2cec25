"""The operator's web page: live reads, search, a vehicle's page, watchlist editing, camera stats."""
