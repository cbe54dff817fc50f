package store

import (
	"testing"
	"time"
)

// TestMySQLTimeouts checks that the store bounds every read, write and
// dial of a MySQL connection unless the DSN says otherwise: without them a
// database that stops answering hangs every query without a deadline.
func TestMySQLTimeouts(t *testing.T) {
	for _, c := range []struct {
		dsn                 string
		dial, read, written time.Duration
	}{
		{"root@tcp(127.0.0.1:3306)/db", MySQLDialTimeout, MySQLReadTimeout, MySQLWriteTimeout},
		{"root@tcp(127.0.0.1:3306)/db?readTimeout=2s&parseTime=true", MySQLDialTimeout, 2 * time.Second, MySQLWriteTimeout},
		{"root@tcp(127.0.0.1:3306)/db?timeout=1s&readTimeout=0&writeTimeout=3s", time.Second, 0, 3 * time.Second},
	} {
		cfg, err := mysqlConfig(c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Timeout != c.dial || cfg.ReadTimeout != c.read || cfg.WriteTimeout != c.written {
			t.Errorf("%s: timeout %v, readTimeout %v, writeTimeout %v; want %v, %v, %v",
				c.dsn, cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout, c.dial, c.read, c.written)
		}
		if !cfg.ParseTime || cfg.Params["charset"] != "utf8mb4" {
			t.Errorf("%s: %+v", c.dsn, cfg)
		}
	}
}
