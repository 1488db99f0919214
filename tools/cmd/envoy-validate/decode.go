package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
	"sigs.k8s.io/yaml"
)

// Unknown fields must be errors, as they are for Envoy: a misspelt key would
// otherwise be dropped silently and the config would mean something else.
var unmarshalOpts = protojson.UnmarshalOptions{DiscardUnknown: false}

// readDoc reads a YAML (or JSON) file into generic JSON values. Numbers stay
// json.Number so that re-encoding a piece of the document (see locate) gives
// back exactly what the file said.
func readDoc(path string) (any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	if doc == nil {
		return nil, errors.New("file is empty")
	}
	return doc, nil
}

// decode turns a generic value into a message of type mt. On failure it
// reports the error at the deepest path that fails, since protojson's own
// "(line 1:345)" points into a JSON rendering of the YAML nobody sees.
func (c *checker) decode(at loc, v any, mt protoreflect.MessageType) (proto.Message, bool) {
	m, err := unmarshal(mt, v)
	if err == nil {
		return m, true
	}
	path, err := locate(mt.Descriptor(), v, "", err)
	c.errorf(at, path, "%s", cleanProtoErr(err))
	return nil, false
}

func unmarshal(mt protoreflect.MessageType, v any) (proto.Message, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := mt.New().Interface()
	if err := unmarshalOpts.Unmarshal(js, m); err != nil {
		return nil, err
	}
	return m, nil
}

func messageType(md protoreflect.MessageDescriptor) protoreflect.MessageType {
	if mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName()); err == nil {
		return mt
	}
	return dynamicpb.NewMessageType(md)
}

// locate narrows a decoding failure down to a field path, using protojson
// itself as the judge: it re-decodes ever smaller pieces of v (one key at a
// time, then that key's value as its own message) and descends into the
// piece that still fails. No protojson rule is re-implemented here; when no
// smaller piece fails (a oneof given twice, say), the error stays at the
// enclosing path. fail is the error already known for v as a whole.
func locate(md protoreflect.MessageDescriptor, v any, path string, fail error) (string, error) {
	obj, ok := v.(map[string]any)
	if !ok || hasSpecialJSON(md) {
		return path, fail
	}

	if md.FullName() == "google.protobuf.Any" {
		url, _ := obj["@type"].(string)
		inner, err := protoregistry.GlobalTypes.FindMessageByURL(url)
		if err != nil {
			return join(path, "@type"), fail
		}
		if hasSpecialJSON(inner.Descriptor()) {
			return path, fail
		}
		body := make(map[string]any, len(obj))
		for k, val := range obj {
			if k != "@type" {
				body[k] = val
			}
		}
		if _, err := unmarshal(inner, body); err != nil {
			return locate(inner.Descriptor(), body, path, err)
		}
		return path, fail
	}

	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mt := messageType(md)
	for _, k := range keys {
		_, err := unmarshal(mt, map[string]any{k: obj[k]})
		if err == nil {
			continue
		}
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		at := join(path, k)
		if fd == nil || fd.Message() == nil {
			return at, err
		}
		sub := fd.Message()
		if fd.IsMap() {
			sub = fd.MapValue().Message()
			if sub == nil {
				return at, err
			}
		}
		switch val := obj[k].(type) {
		case []any:
			if fd.IsList() {
				for i, elem := range val {
					if _, e := unmarshal(messageType(sub), elem); e != nil {
						return locate(sub, elem, fmt.Sprintf("%s[%d]", at, i), e)
					}
				}
			}
		case map[string]any:
			if fd.IsMap() {
				mk := make([]string, 0, len(val))
				for mkey := range val {
					mk = append(mk, mkey)
				}
				sort.Strings(mk)
				for _, mkey := range mk {
					if _, e := unmarshal(messageType(sub), val[mkey]); e != nil {
						return locate(sub, val[mkey], at+"["+mkey+"]", e)
					}
				}
			} else if !fd.IsList() {
				return locate(sub, val, at, err)
			}
		}
		return at, err
	}
	return path, fail
}

// hasSpecialJSON reports the well-known types whose JSON form is not an
// object of their fields (Duration is "5s", Struct is free-form, ...).
func hasSpecialJSON(md protoreflect.MessageDescriptor) bool {
	if md.FullName().Parent() != "google.protobuf" {
		return false
	}
	switch md.Name() {
	case "Any", "Empty":
		return false
	}
	return true
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// protobuf-go prefixes "proto:" with a space that is randomly U+00A0 (on
// purpose, to stop callers from matching on it) and adds a JSON position.
var protoPrefix = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)

func cleanProtoErr(err error) string {
	return protoPrefix.ReplaceAllString(err.Error(), "")
}
