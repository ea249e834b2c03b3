// This file holds the real rate limiter of the lab: an nginx started for
// one test on a free loopback port, with its own prefix, configuration,
// pid and log files in the test's temporary directory, proxying to an
// upstream through limit_req.

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// nginxLimit is the limit_req rule of a lab nginx: rate requests a second
// for all clients together, refusing with 429 and Retry-After: 1 what is
// beyond it; burst 0 is nginx's default (strict: a request less than
// 1/rate after the last admitted one is refused), a burst of n admits n
// more at once (nodelay: none is delayed).
//
// With h2, nginx serves HTTPS with HTTP/2 (a certificate the test makes,
// labCert) instead of plain HTTP/1.1: each replica's callers then share
// one connection, their requests multiplexed as streams, as most
// services reach NeuraCraft.
type nginxLimit struct {
	rate, burst int
	h2          bool
}

func (l nginxLimit) String() string {
	name := "strict"
	if l.burst > 0 {
		name = fmt.Sprintf("burst=%d", l.burst)
	}
	if l.h2 {
		name += ", h2"
	}
	return name
}

// nginxConf is the configuration of a lab nginx in prefix dir, listening
// on listen (over TLS with HTTP/2 and cert when l.h2) and proxying to
// upstream (host:port) with keep-alive.
func nginxConf(dir, listen, upstream string, l nginxLimit, cert labCert) string {
	burst := ""
	if l.burst > 0 {
		burst = fmt.Sprintf(" burst=%d nodelay", l.burst)
	}
	if l.h2 {
		listen = fmt.Sprintf("%s ssl http2;\n\t\tssl_certificate %s;\n\t\tssl_certificate_key %s", listen, cert.certFile, cert.keyFile)
	}
	return fmt.Sprintf(`# A lab nginx: one process in the foreground, stopped by the test.
daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;

	# Every client shares one limit: the lab's callers all come from 127.0.0.1.
	limit_req_zone $binary_remote_addr zone=api:1m rate=%[4]dr/s;
	limit_req_status 429;
	limit_req_log_level info;
	map $status $retry_after {
		429     1;
		default "";
	}
	upstream api {
		server %[3]s;
		keepalive 64;
	}
	server {
		listen %[2]s;
		location = /warm {
			return 204;
		}
		location / {
			limit_req zone=api%[5]s;
			add_header Retry-After $retry_after always;
			proxy_pass http://api;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
`, dir, listen, upstream, l.rate, burst)
}

// startNginx starts nginx with limit l in front of upstream (host:port)
// and returns its base URL ("http://127.0.0.1:port", or https with l.h2,
// serving cert); it is killed at the end of t. Without nginx on PATH (or
// in /usr/sbin) the test is skipped, except in CI (CI=true), where that
// is a failure.
func startNginx(t *testing.T, upstream string, l nginxLimit, cert labCert) string {
	t.Helper()
	path, err := exec.LookPath("nginx")
	if err != nil {
		path, err = exec.LookPath("/usr/sbin/nginx")
	}
	if err != nil {
		msg := "nginx is not installed: the lab needs a real nginx (Debian/Ubuntu: apt-get install -y nginx)"
		require.NotEqual(t, "true", os.Getenv("CI"), msg) // in CI, a failure rather than a skip
		t.Skip(msg)
	}
	dir := t.TempDir()
	listen := freeAddr(t)
	conf := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(conf, []byte(nginxConf(dir, listen, upstream, l, cert)), 0o600))
	// -e: the log of start-up errors, before the configuration is read.
	cmd := exec.Command(path, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start(), "starting nginx")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited at start-up (%v): %s%s", err, out.String(), log)
		default:
		}
		if conn, err := net.DialTimeout("tcp", listen, 100*time.Millisecond); err == nil {
			conn.Close()
			if l.h2 {
				return "https://" + listen
			}
			return "http://" + listen
		}
		require.False(t, time.Now().After(deadline), "nginx did not listen on %s within 10 s", listen)
		time.Sleep(5 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// labCert is a self-signed certificate for 127.0.0.1, made for one test:
// its PEM files, for nginx, and a pool that trusts it, for the clients.
type labCert struct {
	certFile, keyFile string
	roots             *x509.CertPool
}

// newLabCert makes a labCert in a temporary directory of t.
func newLabCert(t *testing.T) labCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "neuracraft-go lab"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	c := labCert{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), roots: x509.NewCertPool()}
	require.NoError(t, os.WriteFile(c.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	c.roots.AddCert(cert)
	return c
}
