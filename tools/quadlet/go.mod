// Podman's Quadlet generator, built from the Go module proxy so the unit checks run
// the same code that turns .pod/.container files into systemd units on a host.
// Pinned to the oldest Podman 5 (5.0.3), the minimum edgeplane supports: a unit that
// this version accepts is accepted by every later 5.x.
module edgeplane/tools/quadlet

go 1.24

tool github.com/containers/podman/v5/cmd/quadlet

require (
	github.com/containers/podman/v5 v5.0.3 // indirect
	github.com/containers/storage v1.53.0 // indirect
)
