"""The task index: a synced store of every vendor's tasks (issue 17). ``schema`` holds the
tables and migrations, ``store`` the queries; the sync that fills it lives beside them."""
