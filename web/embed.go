// Package web holds chatd's chat page, built into the chatd binary so that
// `go run ./cmd/chatd` serves it with no npm step. The script is the
// committed esbuild bundle of src/ (dist/app.js); `make web` rebuilds it and
// CI checks that a clean rebuild gives the same bytes.
package web

import (
	"embed"
	"io/fs"
)

//go:embed index.html style.css dist/app.js
var files embed.FS

// Files returns the page's files: index.html, style.css and dist/app.js.
func Files() fs.FS { return files }
