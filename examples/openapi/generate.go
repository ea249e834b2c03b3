package main

// The two clients are generated from openapi.yaml by the generators' pinned
// versions; the generated code is committed, and TestGeneratedCodeIsCurrent
// checks that these lines reproduce it. Run `go generate` here after
// changing openapi.yaml.

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config oapiclient/config.yaml openapi.yaml
//go:generate go run github.com/ogen-go/ogen/cmd/ogen@v1.25.0 --config ogenclient/ogen.yml --target ogenclient --package ogenclient --clean openapi.yaml
