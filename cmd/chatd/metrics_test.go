package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsListener runs chatd with --metrics-addr and checks what its
// listener serves: Prometheus's format at /metrics, with chatd's, Go's and
// the process's metrics; no profiles; and no header larger than
// --max-header-bytes.
func TestMetricsListener(t *testing.T) {
	dataDir := t.TempDir()
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--data-dir", dataDir, "--metrics-addr", "127.0.0.1:0", "--max-header-bytes", "4096"}, stdoutW, io.Discard)
		stdoutW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v after its context was cancelled, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return within 10s of its context being cancelled")
		}
	})
	lines := bufio.NewScanner(stdoutR)
	var url string
	for url == "" && lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "chatd: metrics on "); ok {
			url = u
		}
	}
	go io.Copy(io.Discard, stdoutR) //nolint:errcheck // drain until run ends
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/metrics") {
		t.Fatalf("chatd said its metrics are at %q; want http://127.0.0.1:PORT/metrics", url)
	}

	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s, %s; want 200 in the text format", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"\nchatd_chat_sessions{state=\"online\"} 0\n", "\ngo_goroutines ", "\nprocess_open_fds ", "\ngrpc_server_started_total{"} {
		if !strings.Contains("\n"+string(body), want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}

	base := strings.TrimSuffix(url, "/metrics")
	resp, err = http.Get(base + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the metrics listener: %s; want 404 (profiles are on --debug-addr)", resp.Status)
	}

	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET /metrics with 16 KiB of headers: %s; want 431", resp.Status)
	}
}
