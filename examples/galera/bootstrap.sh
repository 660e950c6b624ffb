# Starts a new Galera cluster on this node (run by `zerolab up` as root, with sh).
set -eu
systemctl stop mariadb || true
galera_new_cluster
