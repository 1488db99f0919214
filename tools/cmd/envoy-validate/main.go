// Command envoy-validate checks Envoy v3 configuration files offline, without
// an envoy binary.
//
// `envoy --mode validate` does not look inside file-based LDS/CDS (envoy issues
// #36289, #24663), and there is no envoy binary where edgeplane's tests run.
// This tool loads the same files through go-control-plane's generated types and
// protoc-gen-validate rules, which are generated from the very protos Envoy
// compiles, so an unknown field, an unknown "@type", a missing required field
// or an out-of-range value is caught the same way Envoy would catch it. On top
// of that it runs a few cheap cross-resource checks that Envoy performs when it
// accepts a listener or cluster (see semantic.go).
//
// Usage:
//
//	envoy-validate [--root DIR] FILE...
//
// Each FILE is either a bootstrap (the file given to `envoy -c`) or a
// discovery file (a DiscoveryResponse-shaped YAML with a top-level
// `resources:` list). A bootstrap is checked together with the files its
// dynamic_resources.lds_config/cds_config point at (path_config_source or the
// legacy `path`). Discovery files named directly on the command line are
// checked together as one set, so `envoy-validate lds.yaml cds.yaml` works.
//
// --root DIR reads every path found inside a bootstrap as DIR/<path>, so a
// rendered host folder (out/<stack>/hosts/<host>/) whose bootstrap says
// /etc/envoy/dyn/lds.yaml can be validated in place. Relative paths in the
// bootstrap are resolved against DIR too (systemd starts envoy in "/"); without
// --root they are resolved against the current directory, as envoy does.
//
// Errors go to stderr, one per line, as `FILE: [RESOURCE: ]PATH: MESSAGE`;
// the exit status is 1 if there was any. Otherwise "OK" is printed on stdout.
package main

//go:generate go run gen_registry.go

import (
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `usage: envoy-validate [--root DIR] FILE...

FILE is an Envoy bootstrap YAML/JSON or a discovery file (top-level "resources:").
  --root DIR   read paths found in a bootstrap (e.g. /etc/envoy/dyn/lds.yaml)
               as DIR/<path>; relative ones are resolved against DIR as well
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status so that tests
// can drive it directly.
func run(args []string, stdout, stderr io.Writer) int {
	var root string
	var files []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			files = append(files, args[i+1:]...)
			i = len(args)
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprint(stdout, usage)
			return 0
		case a == "--root" || a == "-root":
			if i+1 >= len(args) {
				fmt.Fprint(stderr, "envoy-validate: --root needs a directory\n"+usage)
				return 2
			}
			i++
			root = args[i]
		case strings.HasPrefix(a, "--root=") || strings.HasPrefix(a, "-root="):
			root = a[strings.IndexByte(a, '=')+1:]
		case strings.HasPrefix(a, "-") && a != "-":
			fmt.Fprintf(stderr, "envoy-validate: unknown flag %s\n%s", a, usage)
			return 2
		default:
			files = append(files, a)
		}
	}
	if len(files) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if root != "" {
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "envoy-validate: --root %s: not a directory\n", root)
			return 2
		}
	}

	c := &checker{root: root}
	c.checkFiles(files)

	for _, n := range c.notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	for _, e := range c.errs {
		fmt.Fprintln(stderr, e)
	}
	if len(c.errs) > 0 {
		fmt.Fprintf(stderr, "%d error(s)\n", len(c.errs))
		return 1
	}
	fmt.Fprintln(stdout, "OK")
	return 0
}
