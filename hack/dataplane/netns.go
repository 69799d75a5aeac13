package main

// Pod IPs live in the environment's pod network namespace (hack/localcluster/README.md, contract 2). The data
// plane listens in the host namespace and creates its sockets to pods inside the pod namespace: a socket belongs
// to the namespace of the thread that creates it, so the dial runs on a locked OS thread that joined the pod
// namespace and returns to the host namespace before it is unlocked.

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

const sysSetns = 308 // setns(2) on linux/amd64

func setns(fd uintptr) error {
	if _, _, errno := syscall.RawSyscall(sysSetns, fd, syscall.CLONE_NEWNET, 0); errno != 0 {
		return errno
	}
	return nil
}

// Dialer dials TCP, in a network namespace when one is configured.
type Dialer struct {
	podNS  *os.File // /run/netns/<name>; nil: the current namespace
	hostNS *os.File // this process's namespace, to return to
}

func NewDialer(podNetns string) (*Dialer, error) {
	if podNetns == "" {
		return &Dialer{}, nil
	}
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("--pod-netns is implemented for linux/amd64 only")
	}
	pod, err := os.Open(podNetns)
	if err != nil {
		return nil, fmt.Errorf("pod network namespace: %w", err)
	}
	host, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), syscall.Gettid()))
	if err != nil {
		return nil, fmt.Errorf("own network namespace: %w", err)
	}
	return &Dialer{podNS: pod, hostNS: host}, nil
}

type dialResult struct {
	conn net.Conn
	err  error
}

// DialContext connects to addr (ip:port) from inside the pod namespace.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if d.podNS == nil {
		return nd.DialContext(ctx, network, addr)
	}
	done := make(chan dialResult, 1)
	go func() {
		runtime.LockOSThread()
		if err := setns(d.podNS.Fd()); err != nil {
			runtime.UnlockOSThread()
			done <- dialResult{nil, fmt.Errorf("setns into the pod network namespace: %w", err)}
			return
		}
		// The socket is created here, on this thread, in the pod namespace; connect completes on Go's poller.
		conn, err := nd.DialContext(ctx, network, addr)
		if setns(d.hostNS.Fd()) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays in the pod namespace and locked: it ends with this goroutine
		done <- dialResult{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}
