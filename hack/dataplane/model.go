package main

// The parts of the API objects the data plane reads, decoded from the API server's JSON.
// Only fields that change what the load balancer does are declared; everything else is ignored.

import (
	"strings"
	"time"
)

type ObjectMeta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace"`
	UID               string            `json:"uid"`
	Generation        int64             `json:"generation"`
	ResourceVersion   string            `json:"resourceVersion"`
	CreationTimestamp time.Time         `json:"creationTimestamp"`
	DeletionTimestamp *time.Time        `json:"deletionTimestamp"`
	Labels            map[string]string `json:"labels"`
	Annotations       map[string]string `json:"annotations"`
}

func (m ObjectMeta) Key() string { return m.Namespace + "/" + m.Name }

type Condition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	Reason             string `json:"reason"`
	Message            string `json:"message"`
	ObservedGeneration int64  `json:"observedGeneration"`
}

func conditionTrue(conds []Condition, typ string) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == "True"
		}
	}
	return false
}

// ---------------------------------------------------------------- Gateway API

type GatewayClass struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		ControllerName string `json:"controllerName"`
	} `json:"spec"`
}

type SecretObjectReference struct {
	Group     *string `json:"group"`
	Kind      *string `json:"kind"`
	Name      string  `json:"name"`
	Namespace string  `json:"namespace"`
}

type Listener struct {
	Name     string  `json:"name"`
	Hostname *string `json:"hostname"`
	Port     int     `json:"port"`
	Protocol string  `json:"protocol"`
	TLS      *struct {
		Mode            string                  `json:"mode"`
		CertificateRefs []SecretObjectReference `json:"certificateRefs"`
		Options         map[string]string       `json:"options"`
	} `json:"tls"`
	AllowedRoutes *struct {
		Namespaces *struct {
			From string `json:"from"`
		} `json:"namespaces"`
	} `json:"allowedRoutes"`
}

type Gateway struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		GatewayClassName string     `json:"gatewayClassName"`
		Listeners        []Listener `json:"listeners"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"addresses"`
		Conditions []Condition `json:"conditions"`
	} `json:"status"`
}

type ParentReference struct {
	Group       *string `json:"group"`
	Kind        *string `json:"kind"`
	Namespace   *string `json:"namespace"`
	Name        string  `json:"name"`
	SectionName *string `json:"sectionName"`
	Port        *int    `json:"port"`
}

type HTTPPathMatch struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type HTTPHeaderMatch struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

type HTTPRouteMatch struct {
	Path        *HTTPPathMatch    `json:"path"`
	Headers     []HTTPHeaderMatch `json:"headers"`
	QueryParams []HTTPHeaderMatch `json:"queryParams"`
	Method      *string           `json:"method"`
}

type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type HeaderModifier struct {
	Set    []HTTPHeader `json:"set"`
	Add    []HTTPHeader `json:"add"`
	Remove []string     `json:"remove"`
}

type HTTPPathModifier struct {
	Type               string  `json:"type"`
	ReplaceFullPath    *string `json:"replaceFullPath"`
	ReplacePrefixMatch *string `json:"replacePrefixMatch"`
}

type HTTPRouteFilter struct {
	Type                   string          `json:"type"`
	RequestHeaderModifier  *HeaderModifier `json:"requestHeaderModifier"`
	ResponseHeaderModifier *HeaderModifier `json:"responseHeaderModifier"`
	RequestRedirect        *struct {
		Scheme     *string           `json:"scheme"`
		Hostname   *string           `json:"hostname"`
		Path       *HTTPPathModifier `json:"path"`
		Port       *int              `json:"port"`
		StatusCode *int              `json:"statusCode"`
	} `json:"requestRedirect"`
	URLRewrite *struct {
		Hostname *string           `json:"hostname"`
		Path     *HTTPPathModifier `json:"path"`
	} `json:"urlRewrite"`
}

type BackendRef struct {
	Group     *string `json:"group"`
	Kind      *string `json:"kind"`
	Name      string  `json:"name"`
	Namespace *string `json:"namespace"`
	Port      *int    `json:"port"`
	Weight    *int    `json:"weight"`
}

type HTTPRouteRule struct {
	Matches     []HTTPRouteMatch  `json:"matches"`
	Filters     []HTTPRouteFilter `json:"filters"`
	BackendRefs []BackendRef      `json:"backendRefs"`
}

type RouteParentStatus struct {
	ParentRef      ParentReference `json:"parentRef"`
	ControllerName string          `json:"controllerName"`
	Conditions     []Condition     `json:"conditions"`
}

type HTTPRoute struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		ParentRefs []ParentReference `json:"parentRefs"`
		Hostnames  []string          `json:"hostnames"`
		Rules      []HTTPRouteRule   `json:"rules"`
	} `json:"spec"`
	Status struct {
		Parents []RouteParentStatus `json:"parents"`
	} `json:"status"`
}

// ---------------------------------------------------------------- core

type ServicePort struct {
	Name       string `json:"name"`
	Port       int    `json:"port"`
	TargetPort any    `json:"targetPort"`
}

type Service struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		Ports []ServicePort `json:"ports"`
	} `json:"spec"`
}

type EndpointSlice struct {
	Metadata  ObjectMeta `json:"metadata"`
	Endpoints []struct {
		Addresses  []string `json:"addresses"`
		Conditions struct {
			Ready *bool `json:"ready"`
		} `json:"conditions"`
		TargetRef *struct {
			Kind      string `json:"kind"`
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"targetRef"`
	} `json:"endpoints"`
	Ports []struct {
		Name *string `json:"name"`
		Port *int    `json:"port"`
	} `json:"ports"`
}

type Pod struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		Containers []struct {
			Ports []struct {
				Name          string `json:"name"`
				ContainerPort int    `json:"containerPort"`
			} `json:"ports"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		Phase      string      `json:"phase"`
		PodIP      string      `json:"podIP"`
		Conditions []Condition `json:"conditions"`
	} `json:"status"`
}

func (p *Pod) Ready() bool {
	return p.Metadata.DeletionTimestamp == nil && p.Status.Phase == "Running" && p.Status.PodIP != "" &&
		conditionTrue(p.Status.Conditions, "Ready")
}

type Secret struct {
	Metadata ObjectMeta        `json:"metadata"`
	Type     string            `json:"type"`
	Data     map[string][]byte `json:"data"`
}

// ---------------------------------------------------------------- GIE

type InferencePool struct {
	APIVersion string     `json:"apiVersion"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       struct {
		// v1: selector.matchLabels, targetPorts, endpointPickerRef.
		// v1alpha2: selector is the label map itself, targetPortNumber, extensionRef.
		Selector    map[string]any `json:"selector"`
		TargetPorts []struct {
			Number int `json:"number"`
		} `json:"targetPorts"`
		TargetPortNumber  int `json:"targetPortNumber"`
		EndpointPickerRef *struct {
			Group       *string               `json:"group"`
			Kind        *string               `json:"kind"`
			Name        string                `json:"name"`
			Port        *struct{ Number int } `json:"port"`
			FailureMode string                `json:"failureMode"`
		} `json:"endpointPickerRef"`
		ExtensionRef *struct {
			Group       *string `json:"group"`
			Kind        *string `json:"kind"`
			Name        string  `json:"name"`
			PortNumber  int     `json:"portNumber"`
			FailureMode string  `json:"failureMode"`
		} `json:"extensionRef"`
	} `json:"spec"`
}

// PoolGroupV1 and PoolGroupX are the two InferencePool API groups the profiles use (v1 at GIE v1.1.0,
// v1alpha2 at v0.4.0).
const (
	PoolGroupV1 = "inference.networking.k8s.io"
	PoolGroupX  = "inference.networking.x-k8s.io"
)

// MatchLabels of either API version.
func (p *InferencePool) MatchLabels() map[string]string {
	sel := p.Spec.Selector
	if ml, ok := sel["matchLabels"].(map[string]any); ok && strings.HasSuffix(p.APIVersion, "/v1") {
		sel = ml
	}
	out := map[string]string{}
	for k, v := range sel {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// TargetPorts of either API version.
func (p *InferencePool) Ports() []int {
	var out []int
	for _, tp := range p.Spec.TargetPorts {
		out = append(out, tp.Number)
	}
	if len(out) == 0 && p.Spec.TargetPortNumber != 0 {
		out = append(out, p.Spec.TargetPortNumber)
	}
	return out
}

// EndpointPicker is the pool's endpoint picker Service, port and failure mode (FailClose by default in both
// versions).
func (p *InferencePool) EndpointPicker() (service string, port int, failOpen bool, ok bool) {
	if ref := p.Spec.EndpointPickerRef; ref != nil {
		port = 9002
		if ref.Port != nil && ref.Port.Number != 0 {
			port = ref.Port.Number
		}
		return ref.Name, port, ref.FailureMode == "FailOpen", true
	}
	if ref := p.Spec.ExtensionRef; ref != nil {
		port = ref.PortNumber
		if port == 0 {
			port = 9002
		}
		return ref.Name, port, ref.FailureMode == "FailOpen", true
	}
	return "", 0, false, false
}

// ---------------------------------------------------------------- GKE networking

type PolicyTargetRef struct {
	Group     string `json:"group"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

type HealthCheckProbe struct {
	Port              int    `json:"port"`
	PortName          string `json:"portName"`
	PortSpecification string `json:"portSpecification"`
	RequestPath       string `json:"requestPath"`
	Host              string `json:"host"`
	Response          string `json:"response"`
	GRPCServiceName   string `json:"grpcServiceName"`
}

type HealthCheckPolicy struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		TargetRef PolicyTargetRef `json:"targetRef"`
		Default   struct {
			CheckIntervalSec   int `json:"checkIntervalSec"`
			TimeoutSec         int `json:"timeoutSec"`
			HealthyThreshold   int `json:"healthyThreshold"`
			UnhealthyThreshold int `json:"unhealthyThreshold"`
			Config             struct {
				Type             string            `json:"type"`
				HTTPHealthCheck  *HealthCheckProbe `json:"httpHealthCheck"`
				HTTPSHealthCheck *HealthCheckProbe `json:"httpsHealthCheck"`
				HTTP2HealthCheck *HealthCheckProbe `json:"http2HealthCheck"`
				GRPCHealthCheck  *HealthCheckProbe `json:"grpcHealthCheck"`
				TCPHealthCheck   *HealthCheckProbe `json:"tcpHealthCheck"`
			} `json:"config"`
		} `json:"default"`
	} `json:"spec"`
	Status struct {
		Conditions []Condition `json:"conditions"`
	} `json:"status"`
}

type GCPBackendPolicy struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		TargetRef PolicyTargetRef `json:"targetRef"`
		Default   struct {
			TimeoutSec     *int   `json:"timeoutSec"`
			SecurityPolicy string `json:"securityPolicy"`
		} `json:"default"`
	} `json:"spec"`
	Status struct {
		Conditions []Condition `json:"conditions"`
	} `json:"status"`
}

type RoutingExtension struct {
	Name                string   `json:"name"`
	Authority           string   `json:"authority"`
	Timeout             string   `json:"timeout"`
	FailOpen            bool     `json:"failOpen"`
	SupportedEvents     []string `json:"supportedEvents"`
	RequestBodySendMode string   `json:"requestBodySendMode"`
	ForwardHeaders      []string `json:"forwardHeaders"`
	BackendRef          *struct {
		Name string `json:"name"`
		Port int    `json:"port"`
	} `json:"backendRef"`
}

type GCPRoutingExtension struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		TargetRefs []struct {
			Group string `json:"group"`
			Kind  string `json:"kind"`
			Name  string `json:"name"`
		} `json:"targetRefs"`
		ExtensionChains []struct {
			Name           string `json:"name"`
			MatchCondition *struct {
				CELExpressions []struct {
					CELMatcher string `json:"celMatcher"`
				} `json:"celExpressions"`
			} `json:"matchCondition"`
			Extensions []RoutingExtension `json:"extensions"`
		} `json:"extensionChains"`
	} `json:"spec"`
	Status struct {
		Ancestors []struct {
			AncestorRef struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"ancestorRef"`
			ControllerName string      `json:"controllerName"`
			Conditions     []Condition `json:"conditions"`
		} `json:"ancestors"`
	} `json:"status"`
}
