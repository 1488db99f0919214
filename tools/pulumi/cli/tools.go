//go:build tools

// The Pulumi CLI, built from the Go module proxy at the version of the @pulumi/pulumi
// SDK in package-lock.json: `go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi`.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
