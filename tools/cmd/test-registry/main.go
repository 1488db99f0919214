// Command test-registry is the image registry of the end-to-end tests' throwaway
// hosts, where no public registry can be reached. It builds single-layer OCI images
// from a JSON spec at start (deterministically: same spec and files, same digests)
// and serves them read-only over the registry API (OCI distribution spec, pull
// endpoints only), so podman on the host pulls them exactly as it would from a real
// registry, each rootless service user into its own image store.
//
//	test-registry -listen 127.0.0.1:5000 -spec /etc/edgeplane-test/images.json
//
// The spec is a list of images:
//
//	[{"name": "edgeplane-echo", "tags": ["test"],
//	  "config": {"Entrypoint": ["/usr/local/bin/echo"], "Env": ["PATH=/usr/local/bin"]},
//	  "files": [{"path": "usr/local/bin/echo", "source": "/opt/bin/test-standin", "mode": 493},
//	            {"path": "etc/passwd", "content": "root:x:0:0::/:/\n", "mode": 420},
//	            {"path": "tmp", "dir": true, "mode": 1023}]}]
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

type fileSpec struct {
	Path    string `json:"path"`
	Source  string `json:"source,omitempty"`
	Content string `json:"content,omitempty"`
	Dir     bool   `json:"dir,omitempty"`
	Mode    int64  `json:"mode"`
}

type imageSpec struct {
	Name   string          `json:"name"`
	Tags   []string        `json:"tags"`
	Config json.RawMessage `json:"config"`
	Files  []fileSpec      `json:"files"`
}

type blob struct {
	mediaType string
	data      []byte
}

type registry struct {
	blobs     map[string]blob              // digest → content
	manifests map[string]map[string]string // repository → tag or digest → manifest digest
}

const (
	manifestType = "application/vnd.oci.image.manifest.v1+json"
	configType   = "application/vnd.oci.image.config.v1+json"
	layerType    = "application/vnd.oci.image.layer.v1.tar"
)

var epoch = time.Unix(0, 0).UTC()

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (r *registry) put(mediaType string, data []byte) map[string]any {
	d := digest(data)
	r.blobs[d] = blob{mediaType, data}
	return map[string]any{"mediaType": mediaType, "digest": d, "size": len(data)}
}

// layer is a tar of the spec's files, parents first, with fixed owners and times.
func layer(files []fileSpec) ([]byte, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	for _, f := range files {
		parts := strings.Split(strings.Trim(f.Path, "/"), "/")
		for i := 1; i < len(parts); i++ {
			dir := strings.Join(parts[:i], "/") + "/"
			if seen[dir] {
				continue
			}
			seen[dir] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
				return nil, err
			}
		}
		name := strings.Join(parts, "/")
		if f.Dir {
			seen[name+"/"] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: f.Mode, ModTime: epoch}); err != nil {
				return nil, err
			}
			continue
		}
		data := []byte(f.Content)
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return nil, err
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: f.Mode, Size: int64(len(data)), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (r *registry) add(spec imageSpec) error {
	tarball, err := layer(spec.Files)
	if err != nil {
		return fmt.Errorf("%s: %w", spec.Name, err)
	}
	layerDesc := r.put(layerType, tarball)
	cfg := spec.Config
	if len(cfg) == 0 {
		cfg = json.RawMessage("{}")
	}
	config, _ := json.Marshal(map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": "amd64",
		"os":           "linux",
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDesc["digest"].(string)}},
	})
	configDesc := r.put(configType, config)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     manifestType,
		"config":        configDesc,
		"layers":        []any{layerDesc},
	})
	m := r.put(manifestType, manifest)
	refs := r.manifests[spec.Name]
	if refs == nil {
		refs = map[string]string{}
		r.manifests[spec.Name] = refs
	}
	d := m["digest"].(string)
	refs[d] = d
	for _, tag := range spec.Tags {
		refs[tag] = d
	}
	log.Printf("%s %v %s", spec.Name, spec.Tags, d)
	return nil
}

var route = regexp.MustCompile(`^/v2/(.+)/(manifests|blobs)/([^/]+)$`)

func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, `{"errors":[{"code":"UNSUPPORTED"}]}`, http.StatusMethodNotAllowed)
		return
	}
	if req.URL.Path == "/v2/" || req.URL.Path == "/v2" {
		w.Write([]byte("{}"))
		return
	}
	m := route.FindStringSubmatch(req.URL.Path)
	if m == nil {
		http.NotFound(w, req)
		return
	}
	repo, kind, ref := m[1], m[2], m[3]
	d := ref
	if kind == "manifests" {
		d = r.manifests[repo][ref]
	}
	b, ok := r.blobs[d]
	if !ok || (kind == "manifests" && b.mediaType != manifestType) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"errors":[{"code":"%s_UNKNOWN","message":"%s %s not found"}]}`, strings.ToUpper(strings.TrimSuffix(kind, "s")), repo, ref)
		return
	}
	w.Header().Set("Content-Type", b.mediaType)
	w.Header().Set("Docker-Content-Digest", d)
	w.Header().Set("Content-Length", fmt.Sprint(len(b.data)))
	if req.Method == http.MethodGet {
		w.Write(b.data)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:5000", "address to serve on")
	specPath := flag.String("spec", "", "JSON list of images to serve")
	flag.Parse()
	raw, err := os.ReadFile(*specPath)
	if err != nil {
		log.Fatal(err)
	}
	var specs []imageSpec
	if err := json.Unmarshal(raw, &specs); err != nil {
		log.Fatalf("%s: %v", *specPath, err)
	}
	r := &registry{blobs: map[string]blob{}, manifests: map[string]map[string]string{}}
	for _, s := range specs {
		if err := r.add(s); err != nil {
			log.Fatal(err)
		}
	}
	log.Printf("serving %d images on %s", len(specs), *listen)
	log.Fatal(http.ListenAndServe(*listen, r))
}
