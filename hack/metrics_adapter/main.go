// Command metrics-adapter is the local environment's stand-in for GKE's custom-metrics-stackdriver-adapter
// (gcr.io/gke-release/custom-metrics-stackdriver-adapter, v0.16.9), whose Go module the module proxy does not
// serve. It is an aggregated API server on sigs.k8s.io/custom-metrics-apiserver serving external.metrics.k8s.io
// and custom.metrics.k8s.io from Cloud Monitoring, making the adapter's Monitoring calls with the adapter's
// flags: the pod runner starts it for the adapter's image with the pod's own command line, plus
// --stackdriver-endpoint (the GCP fake), GCE_METADATA_HOST (the fake's metadata server) and the serving and
// kubeconfig flags of a pod.
//
// Only the new resource model (--use-new-resource-model=true, what the pinned manifest sets) is implemented;
// the core metrics API (experimental upstream) is not.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/logs"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	cmoptions "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"
)

type options struct {
	useNewResourceModel         bool
	enableCustomMetricsAPI      bool
	enableExternalMetricsAPI    bool
	fallbackForContainerMetrics bool
	enableCoreMetricsAPI        bool
	metricsAddress              string
	stackdriverEndpoint         string
	enableDistributionSupport   bool
	listFullCustomMetrics       bool
	externalMetricsCacheTTL     time.Duration
	externalMetricsCacheSize    int
	metricKindCacheTTL          time.Duration
	metricKindCacheSize         int
}

// gceConfigFromMetadata is what the adapter reads from the metadata server at start (its config.GetGceConfig).
func gceConfigFromMetadata() (gceConfig, error) {
	if !metadata.OnGCE() {
		return gceConfig{}, fmt.Errorf("Not running on GCE.")
	}
	project, err := metadata.ProjectID()
	if err != nil {
		return gceConfig{}, fmt.Errorf("error while getting project id: %v", err)
	}
	location, err := metadata.InstanceAttributeValue("cluster-location")
	if err != nil {
		klog.Warningf("Failed to retrieve cluster location, falling back to local zone: %s", err)
		if location, err = metadata.Zone(); err != nil {
			return gceConfig{}, fmt.Errorf("error while getting cluster location: %v", err)
		}
	}
	cluster, err := metadata.InstanceAttributeValue("cluster-name")
	if err != nil {
		return gceConfig{}, fmt.Errorf("error while getting cluster name: %v", err)
	}
	instance, err := metadata.Hostname()
	if err != nil {
		return gceConfig{}, fmt.Errorf("error while getting instance hostname: %v", err)
	}
	return gceConfig{Project: project, Location: strings.TrimSpace(location), Cluster: strings.TrimSpace(cluster),
		Instance: instance}, nil
}

// inClusterStandIn: in a pod the adapter finds the API server through the in-cluster configuration (the service
// account token mount); a local pod's process gets its service account's token as $KUBECONFIG instead (the pod
// runner's contract), which then stands for it wherever a kubeconfig flag is not given.
func inClusterStandIn(cmd *basecmd.AdapterBase) {
	path := os.Getenv("KUBECONFIG")
	if path == "" || os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return
	}
	o := cmd.CustomMetricsAdapterServerOptions
	if cmd.RemoteKubeConfigFile == "" {
		cmd.RemoteKubeConfigFile = path
	}
	if o.Authentication.RemoteKubeConfigFile == "" {
		o.Authentication.RemoteKubeConfigFile = path
	}
	if o.Authorization.RemoteKubeConfigFile == "" {
		o.Authorization.RemoteKubeConfigFile = path
	}
	klog.Infof("no in-cluster configuration: the API server is the one of $KUBECONFIG (%s)", path)
}

func main() {
	logs.InitLogs()
	defer logs.FlushLogs()

	cmd := &basecmd.AdapterBase{Name: "custom-metrics-stackdriver-adapter",
		CustomMetricsAdapterServerOptions: cmoptions.NewCustomMetricsAdapterServerOptions()}
	// Without --cert-dir the self-signed serving certificate stays in memory (the upstream default writes it below
	// the working directory, the container's "/").
	cmd.CustomMetricsAdapterServerOptions.SecureServing.ServerCert.CertDirectory = ""
	flags := cmd.Flags()
	klog.InitFlags(flag.CommandLine)
	flags.AddGoFlagSet(flag.CommandLine)

	o := options{enableCustomMetricsAPI: true, enableExternalMetricsAPI: true, externalMetricsCacheSize: 300,
		metricKindCacheSize: 25}
	flags.BoolVar(&o.useNewResourceModel, "use-new-resource-model", false, "whether to use new Stackdriver resource model")
	flags.BoolVar(&o.enableCustomMetricsAPI, "enable-custom-metrics-api", o.enableCustomMetricsAPI, "whether to enable Custom Metrics API")
	flags.BoolVar(&o.enableExternalMetricsAPI, "enable-external-metrics-api", o.enableExternalMetricsAPI, "whether to enable External Metrics API")
	flags.BoolVar(&o.fallbackForContainerMetrics, "fallback-for-container-metrics", false, "If true, fallbacks to k8s_container resource when given metric is not present on k8s_pod.")
	flags.BoolVar(&o.enableCoreMetricsAPI, "enable-core-metrics-api", false, "Experimental upstream; not implemented here.")
	flags.StringVar(&o.metricsAddress, "metrics-address", "", "Endpoint with port on which the Prometheus metrics server is enabled.")
	flags.StringVar(&o.stackdriverEndpoint, "stackdriver-endpoint", "", "Stackdriver Endpoint used by adapter. Default is https://monitoring.googleapis.com/")
	flags.BoolVar(&o.enableDistributionSupport, "enable-distribution-support", false, "enables support for scaling based on distribution values")
	flags.BoolVar(&o.listFullCustomMetrics, "list-full-custom-metrics", false, "list every pod custom metric during API discovery, not just one")
	flags.DurationVar(&o.externalMetricsCacheTTL, "external-metric-cache-ttl", 0, "The duration for which external metric values are cached (0: off).")
	flags.IntVar(&o.externalMetricsCacheSize, "external-metric-cache-size", o.externalMetricsCacheSize, "The maximum number of entries in the external metric cache.")
	flags.DurationVar(&o.metricKindCacheTTL, "metric-kind-cache-ttl", 0, "The duration for which metric kind info calls are cached (0: off).")
	flags.IntVar(&o.metricKindCacheSize, "metric-kind-cache-size", o.metricKindCacheSize, "The maximum number of entries in the metric kind cache.")
	if err := flags.Parse(os.Args); err != nil {
		klog.Fatalf("unable to parse flags: %v", err)
	}
	inClusterStandIn(cmd)
	klog.Infof("serverOptions: %+v", o)
	if !o.useNewResourceModel {
		klog.Fatalf("the legacy resource model (--use-new-resource-model=false) is not implemented by this local stand-in; the pinned manifest sets --use-new-resource-model=true")
	}
	if o.enableCoreMetricsAPI {
		klog.Fatalf("--enable-core-metrics-api (experimental upstream) is not implemented by this local stand-in")
	}

	ctx := genericapiserver.SetupSignalContext()
	tokens, err := google.DefaultTokenSource(ctx, "https://www.googleapis.com/auth/monitoring.read")
	if err != nil {
		klog.Fatalf("unable to use default token source: %v", err)
	}
	monitoring, err := newMonitoringClient(o.stackdriverEndpoint, oauth2.NewClient(context.Background(), tokens))
	if err != nil {
		klog.Fatalf("%v", err)
	}
	cfg, err := gceConfigFromMetadata()
	if err != nil {
		klog.Fatalf("Failed to retrieve GCE config: %v", err)
	}
	klog.Infof("GCE config: project %s, location %s, cluster %s, instance %s", cfg.Project, cfg.Location, cfg.Cluster, cfg.Instance)

	restConfig, err := cmd.ClientConfig()
	if err != nil {
		klog.Fatalf("unable to construct client config: %v", err)
	}
	kube, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		klog.Fatalf("unable to construct client: %v", err)
	}
	mapper, err := cmd.RESTMapper()
	if err != nil {
		klog.Fatalf("unable to construct discovery REST mapper: %v", err)
	}
	custom, err := listCustomMetrics(ctx, monitoring, cfg, o.fallbackForContainerMetrics, o.listFullCustomMetrics)
	if err != nil {
		klog.Fatalf("Failed request to stackdriver api: %s", err)
	}
	p := &stackdriverProvider{
		kube: kube, mapper: mapper, monitoring: monitoring, cfg: cfg,
		fallbackToContainers: o.fallbackForContainerMetrics, distributions: o.enableDistributionSupport,
		customMetrics: custom,
		kinds:         newTTLCache[metricKind](o.metricKindCacheTTL, o.metricKindCacheSize),
		external:      newTTLCache[*external_metrics.ExternalMetricValueList](o.externalMetricsCacheTTL, o.externalMetricsCacheSize),
		now:           time.Now,
	}
	if o.enableCustomMetricsAPI {
		cmd.WithCustomMetrics(p)
	}
	if o.enableExternalMetricsAPI {
		cmd.WithExternalMetrics(p)
	}
	if o.metricsAddress != "" {
		go func() {
			mux := http.NewServeMux()
			mux.Handle("/metrics", legacyregistry.Handler())
			klog.Fatalf("Failed server: %s", http.ListenAndServe(o.metricsAddress, mux))
		}()
	}
	if err := cmd.Run(ctx); err != nil {
		klog.Fatalf("unable to run custom metrics adapter: %v", err)
	}
}
