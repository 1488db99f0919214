// Command test-standin plays the programs the end-to-end tests run in their pods
// instead of real apps. One static binary, chosen by its name (argv[0]) or its first
// argument:
//
//	echo     an app that answers every request with what it received, as JSON
//	         (method, target, headers, the TCP peer); /stream sends a line every
//	         200 ms for ?seconds=N (default 10), to hold a response open
//	outpost  a stand-in for Authentik's embedded outpost: /outpost.goauthentik.io/auth/caddy
//	         answers 200 with X-Authentik-* headers to a request carrying the session
//	         cookie, and 302 to the login page without it (the same behaviour as the
//	         stub in test/live/forward-auth.test.ts)
//	ak       `ak shell -c CODE` as edgeplane calls it in the Authentik container: the
//	         blueprint dry run reads the candidate on stdin and checks it is non-empty
//	         YAML-ish text; the apply checks the installed file is readable under
//	         /blueprints with the hash edgeplane names; the removal of an application
//	         succeeds (nothing is kept). Authentik's importer is not run.
//	envoy    `envoy --mode validate -c FILE` runs envoy-validate (Envoy's own schema
//	         checks, tools/cmd/envoy-validate) on FILE; any other invocation idles
//	         until SIGTERM: Envoy's data plane is not run in the tests.
//
// and the tests' network helpers forward, probe and sni (net.go).
//
// Listening port for echo and outpost: $PORT (default 8080).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Session is the cookie the outpost stand-in treats as a signed-in user.
const Session = "authentik_proxy_test=valid-session"

// Login is where the outpost stand-in redirects a request without a session.
const Login = "https://auth.example.org/application/o/authorize/?client_id=test"

func main() {
	mode := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if mode == "test-standin" && len(args) > 0 {
		mode, args = args[0], args[1:]
	}
	switch mode {
	case "echo":
		serve(echoHandler())
	case "outpost":
		serve(outpostHandler())
	case "ak":
		os.Exit(ak(args))
	case "envoy":
		os.Exit(envoy(args))
	case "forward":
		os.Exit(forward(args))
	case "probe":
		os.Exit(probe(args))
	case "sni":
		os.Exit(sni(args))
	default:
		fmt.Fprintf(os.Stderr, "test-standin: unknown mode %q (echo, outpost, ak, envoy)\n", mode)
		os.Exit(2)
	}
}

func serve(h http.Handler) {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: h}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Echoed is what the echo app answers.
type Echoed struct {
	Method  string              `json:"method"`
	URL     string              `json:"url"`
	Host    string              `json:"host"`
	Remote  string              `json:"remote"`
	Headers map[string][]string `json:"headers"`
}

func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			stream(w, r)
			return
		}
		headers := map[string][]string{}
		for k, v := range r.Header {
			headers[strings.ToLower(k)] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Echoed{r.Method, r.RequestURI, r.Host, r.RemoteAddr, headers})
	})
}

func stream(w http.ResponseWriter, r *http.Request) {
	seconds, err := strconv.Atoi(r.URL.Query().Get("seconds"))
	if err != nil || seconds <= 0 || seconds > 120 {
		seconds = 10
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/plain")
	for i := 0; i < seconds*5; i++ {
		fmt.Fprintf(w, "tick %d\n", i)
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Fprintln(w, "done")
}

func outpostHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/outpost.goauthentik.io/auth/caddy") {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "outpost %s\n", r.RequestURI)
			return
		}
		if strings.Contains(r.Header.Get("Cookie"), Session) {
			w.Header().Set("X-Authentik-Username", "alice")
			w.Header().Set("X-Authentik-Groups", "admins|ops")
			w.Header().Set("X-Authentik-Email", "alice@example.org")
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Redirect(w, r, Login, http.StatusFound)
	})
}

var pyString = func(name string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + name + ` = "([^"]*)"`)
}

func ak(args []string) int {
	if len(args) != 3 || args[0] != "shell" || args[1] != "-c" {
		fmt.Fprintln(os.Stderr, "ak stand-in: only `ak shell -c CODE` is supported")
		return 2
	}
	code := args[2]
	switch {
	case strings.Contains(code, "def remove_here"):
		// The stand-in keeps no applications, so there is nothing left to remove.
		fmt.Println("edgeplane-blueprint-result: removed")
		return 0
	case strings.Contains(code, ".validate()") && strings.Contains(code, "sys.stdin.read()") && !strings.Contains(code, "def apply_here"):
		content, err := io.ReadAll(os.Stdin)
		if err != nil || !strings.Contains(string(content), "entries:") {
			fmt.Fprintln(os.Stderr, "edgeplane: blueprint has no entries")
			return 1
		}
		fmt.Println("edgeplane-blueprint-result: valid")
		return 0
	case strings.Contains(code, "def apply_here"):
		path, sum := pyString("PATH").FindStringSubmatch(code), pyString("SHA256").FindStringSubmatch(code)
		if path == nil || sum == nil {
			fmt.Fprintln(os.Stderr, "ak stand-in: no PATH or SHA256 in the apply code")
			return 1
		}
		content, err := os.ReadFile(filepath.Join("/blueprints", path[1]))
		if err != nil {
			fmt.Fprintf(os.Stderr, "edgeplane: Authentik does not read what edgeplane installed: %v\n", err)
			return 1
		}
		h := sha256.Sum256(content)
		if hex.EncodeToString(h[:]) != sum[1] {
			fmt.Fprintln(os.Stderr, "edgeplane: Authentik does not read what edgeplane installed (other content)")
			return 1
		}
		fmt.Println("edgeplane-blueprint-result: successful")
		return 0
	}
	fmt.Fprintln(os.Stderr, "ak stand-in: unrecognised code")
	return 2
}

func envoy(args []string) int {
	var mode, config string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--mode":
			mode = args[i+1]
		case "-c", "--config-path":
			config = args[i+1]
		}
	}
	if mode == "validate" {
		cmd := []string{"/usr/local/bin/envoy-validate", config}
		if err := syscall.Exec(cmd[0], cmd, os.Environ()); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "envoy stand-in: config %s; Envoy's data plane is not run in the tests, idling\n", config)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return 0
}
