module github.com/neuracraft/neuracraft-go/examples/oauth

go 1.26.0

require (
	github.com/neuracraft/neuracraft-go v0.0.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/oauth2 v0.38.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect

replace github.com/neuracraft/neuracraft-go => ../..
