package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// Client is a connection to a daemon's control socket.
type Client struct {
	path    string
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// Dial connects to the control socket at path. timeout bounds each
// request's round trip. Dial does not check who owns the socket: a client
// about to use the default path calls CheckDefaultSocket first.
func Dial(path string, timeout time.Duration) (*Client, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w (is ringdns running? use -s PATH)", path, err)
	}
	return &Client{path: path, conn: c, r: bufio.NewReaderSize(c, 64<<10), timeout: timeout}, nil
}

// closedErr turns an error from writing a request or reading its reply
// into one that says what happened. A daemon closes a connection without
// a reply when it is over its bound of connections or stopping; the
// client sees that as a broken pipe, a reset or an end of file.
func (c *Client) closedErr(err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("ringdns at %s closed the connection before replying: too many control connections open (limit %d), or is it stopping?",
			c.path, MaxConns)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no reply from ringdns at %s within %s", c.path, c.timeout)
	default:
		return fmt.Errorf("ringdns at %s: %w", c.path, err)
	}
}

// Do sends one request and waits for its reply. When the reply carries
// data and out is not nil, the data is decoded into out.
func (c *Client) Do(req Request, out any) (Reply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	// A write that finds the connection closed may still leave a reply to
	// read: a daemon that refuses a connection replies and closes it
	// without waiting for the request.
	if _, err := c.conn.Write(append(b, '\n')); err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		return Reply{}, c.closedErr(err)
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return Reply{}, c.closedErr(err)
	}
	var rep Reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return Reply{}, fmt.Errorf("bad reply: %w", err)
	}
	if out != nil && len(rep.Data) > 0 {
		if err := json.Unmarshal(rep.Data, out); err != nil {
			return rep, fmt.Errorf("bad reply data: %w", err)
		}
	}
	return rep, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
