// Command oracle runs the OpenTelemetry collector's own Jaeger translator
// (pkg/translator/jaeger, default feature gates) on a hex input from stdin and
// prints the OTLP ExportTraceServiceRequest it produces, in hex (or "error: ...").
//
//	oracle agent-compact|agent-binary|thrift-batch|proto < input.hex
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/apache/thrift/lib/go/thrift"
	api_v2 "github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/agent"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
	jt "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/jaeger"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func run(mode string, in []byte) (ptrace.Traces, error) {
	ctx := context.Background()
	buf := thrift.NewTMemoryBuffer()
	buf.Write(in)
	conf := &thrift.TConfiguration{}
	switch mode {
	case "agent-compact", "agent-binary":
		var p thrift.TProtocol = thrift.NewTBinaryProtocolConf(buf, conf)
		if mode == "agent-compact" {
			p = thrift.NewTCompactProtocolConf(buf, conf)
		}
		if _, _, _, err := p.ReadMessageBegin(ctx); err != nil {
			return ptrace.Traces{}, err
		}
		args := agent.NewAgentEmitBatchArgs()
		if err := args.Read(ctx, p); err != nil {
			return ptrace.Traces{}, err
		}
		return jt.ThriftToTraces(args.Batch)
	case "thrift-batch":
		b := &jaeger.Batch{}
		if err := b.Read(ctx, thrift.NewTBinaryProtocolConf(buf, conf)); err != nil {
			return ptrace.Traces{}, err
		}
		return jt.ThriftToTraces(b)
	case "proto":
		var r api_v2.PostSpansRequest
		if err := r.Unmarshal(in); err != nil {
			return ptrace.Traces{}, err
		}
		return jt.ProtoToTraces([]*model.Batch{&r.Batch})
	}
	return ptrace.Traces{}, fmt.Errorf("unknown mode %q", mode)
}

func main() {
	raw, _ := io.ReadAll(os.Stdin)
	in, err := hex.DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	td, err := run(os.Args[1], in)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	out, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(hex.EncodeToString(out))
}
