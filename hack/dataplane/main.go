// Command gateway-dataplane is the local environment's simulator of GKE's load balancer: for every Gateway of a
// GKE class that the status simulator (hack/gke_sim) programmed, it serves the Gateway's status address and
// listener ports and routes requests as the load balancer GKE programs would, with the real upstream body-based
// router and endpoint pickers over ext_proc. It is not Envoy and not GKE; README.md in this directory says what
// it implements and what it does not.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster (JSON, as the local environment writes it)")
	podNetns := flag.String("pod-netns", "", "network namespace file of the pods (/run/netns/<name>); empty: dial from the current namespace")
	gcpEndpoint := flag.String("gcp-endpoint", "", "base URL of the GCP fake (http://127.0.0.1:<port>) for Cloud Armor policies and Certificate Manager certificates")
	gcpProject := flag.String("gcp-project", "local-project", "project of the security policies and certificates")
	gcpRegion := flag.String("gcp-region", "us-central1", "region of the regional Gateway classes")
	adminAddr := flag.String("admin-addr", "127.0.0.1:0", "address of the admin endpoint (/healthz, /gateways, /backends)")
	accessLog := flag.Bool("access-log", true, "log one line per request")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if *kubeconfig == "" {
		log.Fatal("--kubeconfig (or KUBECONFIG) is required")
	}
	kube, err := NewKubeClient(*kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	dialer, err := NewDialer(*podNetns)
	if err != nil {
		log.Fatal(err)
	}
	// The GCP token comes from the environment, not argv, so that it is not in the process list.
	gcpToken := os.Getenv("DATAPLANE_GCP_TOKEN")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	cache := NewCache()
	res := resources()
	for _, r := range res {
		go kube.Run(ctx, r, cache)
	}
	state := &State{}
	grpcPool := NewGRPCPool(dialer)
	health := NewHealthChecker(dialer, grpcPool, nil)
	armor := NewArmorStore(*gcpEndpoint, gcpToken, *gcpProject, *gcpRegion)
	proxy := NewProxy(state, health, grpcPool, armor, dialer, *accessLog)
	certs := NewCertStore(cache, *gcpEndpoint, *gcpRegion)
	listeners := NewListeners(proxy, certs)

	adminLn, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		log.Fatalf("admin endpoint: %v", err)
	}
	admin := &http.Server{Handler: AdminHandler(state, health, listeners), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = admin.Serve(adminLn) }()
	log.Printf("gateway-dataplane: admin endpoint http://%s (pod netns %q, GCP %q)", adminLn.Addr(), *podNetns, *gcpEndpoint)

	apply := func() {
		snap := BuildSnapshot(cache)
		state.snap.Store(snap)
		health.Update(snap)
		listeners.Update(snap)
	}
	resync := time.NewTicker(10 * time.Second) // certificates and policies outside the cluster, a safety net
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Printf("gateway-dataplane: stopping")
			listeners.CloseAll()
			_ = admin.Close()
			return
		case <-cache.changed:
			// Let a burst of watch events settle, then rebuild once.
			time.Sleep(50 * time.Millisecond)
			select {
			case <-cache.changed:
			default:
			}
		case <-resync.C:
		}
		if !cache.Synced(res) {
			continue
		}
		if !state.ready.Load() {
			log.Printf("gateway-dataplane: caches synced")
		}
		apply()
		state.ready.Store(true)
	}
}
