package main

// The ext_proc client: how GKE's load balancer (Envoy) talks to a GCPRoutingExtension (BBR) and to an
// InferencePool's endpoint picker, in FULL_DUPLEX_STREAMED body mode over TLS without certificate verification
// (both serve a self-signed certificate). The protocol, as GIE's EPP and BBR implement it
// (shared/reference/notes/local-dataplane.md §2-4):
//
//   - request: RequestHeaders (end_of_stream when there is no body), then the body in RequestBody chunks, the
//     last with end_of_stream. The processor answers the headers only once it has the whole body, with header
//     mutations (and, for the EPP, the destination in dynamic metadata envoy.lb/x-gateway-destination-endpoint
//     and in a header of the same name), then the body as streamed_response chunks up to end_of_stream;
//   - response (EPP only): ResponseHeaders, then ResponseBody chunks; the processor answers the headers, then
//     streams the body back, which is what the client receives;
//   - an ImmediateResponse at any point ends the exchange with that status.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	destinationHeader  = "x-gateway-destination-endpoint"
	destinationMDSpace = "envoy.lb"
	bodyChunk          = 62000 // below the 64 KiB some Envoy builds allow per streamed chunk, as GIE does
)

// GRPCPool keeps one client connection per ext_proc endpoint, dialled in the pod namespace.
type GRPCPool struct {
	dialer *Dialer
	mu     sync.Mutex
	conns  map[string]*pooledConn
}

type pooledConn struct {
	conn     *grpc.ClientConn
	lastUsed time.Time
}

func NewGRPCPool(d *Dialer) *GRPCPool {
	p := &GRPCPool{dialer: d, conns: map[string]*pooledConn{}}
	go p.sweep()
	return p
}

func (p *GRPCPool) Conn(addr string, useTLS bool) (*grpc.ClientConn, error) {
	key := addr
	if useTLS {
		key = "tls://" + addr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pc, ok := p.conns[key]; ok {
		pc.lastUsed = time.Now()
		return pc.conn, nil
	}
	creds := grpc.WithTransportCredentials(insecure.NewCredentials()) // the BBR's gRPC health port
	if useTLS {
		creds = grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})) // #nosec G402: as GKE and Envoy do with the EPP's self-signed certificate
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, creds,
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return p.dialer.DialContext(ctx, "tcp", a)
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	p.conns[key] = &pooledConn{conn: conn, lastUsed: time.Now()}
	return conn, nil
}

// sweep closes connections unused for two minutes (endpoints come and go with pods).
func (p *GRPCPool) sweep() {
	for range time.Tick(30 * time.Second) {
		p.mu.Lock()
		for k, pc := range p.conns {
			if time.Since(pc.lastUsed) > 2*time.Minute {
				pc.conn.Close()
				delete(p.conns, k)
			}
		}
		p.mu.Unlock()
	}
}

// ---------------------------------------------------------------- one exchange

// ExtSession is one ext_proc stream (one HTTP request).
type ExtSession struct {
	stream  extprocv3.ExternalProcessor_ProcessClient
	cancel  context.CancelFunc
	timeout time.Duration // per awaited message (Envoy's message_timeout); 0 = none
}

// ImmediateError is an ImmediateResponse from the processor.
type ImmediateError struct {
	Status  int
	Body    []byte
	Headers *extprocv3.HeaderMutation
}

func (e *ImmediateError) Error() string {
	return fmt.Sprintf("immediate response %d: %s", e.Status, strings.TrimSpace(string(e.Body)))
}

func OpenSession(ctx context.Context, conn *grpc.ClientConn, timeout time.Duration) (*ExtSession, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return &ExtSession{stream: stream, cancel: cancel, timeout: timeout}, nil
}

func (s *ExtSession) Close() {
	_ = s.stream.CloseSend()
	s.cancel()
}

// recv waits for the next message, at most s.timeout.
func (s *ExtSession) recv() (*extprocv3.ProcessingResponse, error) {
	if s.timeout <= 0 {
		return s.stream.Recv()
	}
	type result struct {
		msg *extprocv3.ProcessingResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := s.stream.Recv()
		ch <- result{m, err}
	}()
	select {
	case r := <-ch:
		return r.msg, r.err
	case <-time.After(s.timeout):
		s.cancel()
		return nil, fmt.Errorf("no answer within %s", s.timeout)
	}
}

// headerMap turns headers (pseudo-headers first, names lower-case) into ext_proc's form, values as raw bytes as
// current Envoy sends them.
func headerMap(pseudo [][2]string, h http.Header) *corev3.HeaderMap {
	hm := &corev3.HeaderMap{}
	for _, kv := range pseudo {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	for k, vs := range h {
		for _, v := range vs {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: strings.ToLower(k), RawValue: []byte(v)})
		}
	}
	return hm
}

// RequestResult is what the request phase changed.
type RequestResult struct {
	Mutations []*extprocv3.HeaderMutation
	Body      []byte // the body to forward (the processor's streamed body)
	Metadata  *structpb.Struct
}

// RequestPhase sends the request headers and body and collects the processor's answers.
func (s *ExtSession) RequestPhase(pseudo [][2]string, h http.Header, body []byte) (*RequestResult, error) {
	first := &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: headerMap(pseudo, h), EndOfStream: len(body) == 0}},
		ProtocolConfig: &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  filterv3.ProcessingMode_FULL_DUPLEX_STREAMED,
			ResponseBodyMode: filterv3.ProcessingMode_FULL_DUPLEX_STREAMED},
	}
	if err := s.stream.Send(first); err != nil {
		return nil, err
	}
	for off := 0; off < len(body); off += bodyChunk {
		end := min(off+bodyChunk, len(body))
		msg := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: body[off:end], EndOfStream: end == len(body)}}}
		if err := s.stream.Send(msg); err != nil {
			return nil, err
		}
	}
	res := &RequestResult{}
	headersDone, bodyDone := false, len(body) == 0
	var streamed []byte
	streamedAny := false
	for !headersDone || !bodyDone {
		msg, err := s.recv()
		if err != nil {
			return nil, err
		}
		if msg.DynamicMetadata != nil {
			res.Metadata = msg.DynamicMetadata
		}
		switch r := msg.Response.(type) {
		case *extprocv3.ProcessingResponse_ImmediateResponse:
			return nil, immediate(r.ImmediateResponse)
		case *extprocv3.ProcessingResponse_RequestHeaders:
			headersDone = true
			if c := r.RequestHeaders.GetResponse(); c != nil {
				if c.HeaderMutation != nil {
					res.Mutations = append(res.Mutations, c.HeaderMutation)
				}
				if bm := c.BodyMutation; bm != nil {
					body, bodyDone = applyBufferedBody(bm, body), true
				}
			}
		case *extprocv3.ProcessingResponse_RequestBody:
			c := r.RequestBody.GetResponse()
			if c != nil && c.HeaderMutation != nil {
				res.Mutations = append(res.Mutations, c.HeaderMutation)
			}
			switch m := c.GetBodyMutation().GetMutation().(type) {
			case *extprocv3.BodyMutation_StreamedResponse:
				streamedAny = true
				streamed = append(streamed, m.StreamedResponse.Body...)
				if m.StreamedResponse.EndOfStream {
					bodyDone = true
				}
			case nil:
				bodyDone = true // no mutation: the body as sent
			default:
				body, bodyDone = applyBufferedBody(c.BodyMutation, body), true
			}
		case *extprocv3.ProcessingResponse_RequestTrailers:
		default:
			return nil, fmt.Errorf("unexpected %T during the request phase", r)
		}
	}
	if streamedAny {
		body = streamed
	}
	res.Body = body
	return res, nil
}

func applyBufferedBody(bm *extprocv3.BodyMutation, body []byte) []byte {
	switch m := bm.Mutation.(type) {
	case *extprocv3.BodyMutation_Body:
		return m.Body
	case *extprocv3.BodyMutation_ClearBody:
		if m.ClearBody {
			return nil
		}
	case *extprocv3.BodyMutation_StreamedResponse:
		return m.StreamedResponse.Body
	}
	return body
}

func immediate(r *extprocv3.ImmediateResponse) *ImmediateError {
	status := int(r.GetStatus().GetCode())
	if status == 0 {
		status = http.StatusOK
	}
	return &ImmediateError{Status: status, Body: r.Body, Headers: r.Headers}
}

// ResponseHeaders sends the upstream's status and headers and returns the processor's mutations.
func (s *ExtSession) ResponseHeaders(status int, h http.Header, endOfStream bool) (*extprocv3.HeaderMutation, error) {
	msg := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: headerMap([][2]string{{":status", fmt.Sprint(status)}}, h), EndOfStream: endOfStream}}}
	if err := s.stream.Send(msg); err != nil {
		return nil, err
	}
	for {
		resp, err := s.recv()
		if err != nil {
			return nil, err
		}
		switch r := resp.Response.(type) {
		case *extprocv3.ProcessingResponse_ImmediateResponse:
			return nil, immediate(r.ImmediateResponse)
		case *extprocv3.ProcessingResponse_ResponseHeaders:
			return r.ResponseHeaders.GetResponse().GetHeaderMutation(), nil
		case *extprocv3.ProcessingResponse_RequestBody, *extprocv3.ProcessingResponse_RequestTrailers:
			continue // late answers of the request phase
		default:
			return nil, fmt.Errorf("unexpected %T while waiting for the response headers answer", r)
		}
	}
}

// ResponseBody streams the upstream body through the processor and writes what it returns to w, flushing each
// chunk (server-sent events pass through as they come).
func (s *ExtSession) ResponseBody(upstream io.Reader, w io.Writer, flush func()) error {
	sendErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 32*1024)
		for {
			n, err := upstream.Read(buf)
			if n > 0 {
				chunk := append([]byte(nil), buf[:n]...)
				if e := s.stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
					ResponseBody: &extprocv3.HttpBody{Body: chunk}}}); e != nil {
					sendErr <- e
					return
				}
			}
			if errors.Is(err, io.EOF) {
				sendErr <- s.stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
					ResponseBody: &extprocv3.HttpBody{EndOfStream: true}}})
				return
			}
			if err != nil {
				sendErr <- err
				return
			}
		}
	}()
	for {
		msg, err := s.stream.Recv() // no per-message timeout: a stream's chunks come at the model's pace
		if err != nil {
			select {
			case e := <-sendErr:
				if e != nil {
					return e
				}
			default:
			}
			return err
		}
		switch r := msg.Response.(type) {
		case *extprocv3.ProcessingResponse_ImmediateResponse:
			return immediate(r.ImmediateResponse)
		case *extprocv3.ProcessingResponse_ResponseBody:
			switch m := r.ResponseBody.GetResponse().GetBodyMutation().GetMutation().(type) {
			case *extprocv3.BodyMutation_StreamedResponse:
				if len(m.StreamedResponse.Body) > 0 {
					if _, err := w.Write(m.StreamedResponse.Body); err != nil {
						return err
					}
					flush()
				}
				if m.StreamedResponse.EndOfStream {
					return nil
				}
			case *extprocv3.BodyMutation_Body:
				if _, err := w.Write(m.Body); err != nil {
					return err
				}
				return nil
			}
		case *extprocv3.ProcessingResponse_ResponseTrailers:
		default:
		}
	}
}

// Destination reads the endpoint the picker chose: dynamic metadata first, then the header (the GIE protocol
// allows a comma-separated list: the first is primary, the rest fallbacks).
func Destination(res *RequestResult) []string {
	var value string
	if md := res.Metadata; md != nil {
		if ns := md.GetFields()[destinationMDSpace].GetStructValue(); ns != nil {
			value = ns.GetFields()[destinationHeader].GetStringValue()
		}
	}
	if value == "" {
		for _, m := range res.Mutations {
			for _, h := range m.SetHeaders {
				if strings.EqualFold(h.GetHeader().GetKey(), destinationHeader) {
					value = headerValueOf(h.GetHeader())
				}
			}
		}
	}
	var out []string
	for _, v := range strings.Split(value, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func headerValueOf(h *corev3.HeaderValue) string {
	if len(h.RawValue) > 0 {
		return string(h.RawValue)
	}
	return h.Value
}

// ApplyMutation applies set/remove header mutations as Envoy's ext_proc filter does: set replaces unless
// append is requested; pseudo-headers other than :path, and host, are not mutable.
func ApplyMutation(h http.Header, path *string, m *extprocv3.HeaderMutation) {
	if m == nil {
		return
	}
	for _, name := range m.RemoveHeaders {
		if !strings.HasPrefix(name, ":") && !strings.EqualFold(name, "host") {
			h.Del(name)
		}
	}
	for _, opt := range m.SetHeaders {
		hv := opt.GetHeader()
		key, value := hv.GetKey(), headerValueOf(hv)
		switch {
		case key == ":path":
			if path != nil {
				*path = value
			}
			continue
		case strings.HasPrefix(key, ":") || strings.EqualFold(key, "host"):
			continue
		}
		appendValue := opt.GetAppend() != nil && opt.GetAppend().GetValue()
		switch {
		case appendValue:
			h.Add(key, value)
		case opt.GetAppendAction() == corev3.HeaderValueOption_ADD_IF_ABSENT:
			if h.Get(key) == "" {
				h.Set(key, value)
			}
		default:
			h.Set(key, value)
		}
	}
}
