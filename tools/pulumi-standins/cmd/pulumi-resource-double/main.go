// Command pulumi-resource-double is a TEST DOUBLE standing in for the real
// pulumi-resource-kubernetes and pulumi-resource-command providers, which cannot be built
// here (the Go module proxy does not serve them at the pinned versions). scripts/toolchain.sh
// builds it twice, stamping the package it pretends to be:
//
//	-ldflags "-X main.pkg=kubernetes -X main.version=4.34.2" -> test-doubles/pulumi-resource-kubernetes
//	-ldflags "-X main.pkg=command    -X main.version=1.2.1"  -> test-doubles/pulumi-resource-command
//
// It is ONLY for the project's engine tests, which install it into a throwaway PULUMI_HOME;
// it never goes into the toolchain's bin/ or pulumi-home/. It talks to no cluster, executes
// no command, records nothing and decides nothing: inputs come back as outputs, Diff reports
// which top-level inputs changed (the engine applies the program's replaceOnChanges to that),
// and the only validation is the real provider's "local chart not found" check on
// kubernetes:helm.sh/v3:Release.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Set with -ldflags -X at build time.
var (
	pkg     = "double"
	version = "0.0.0"
)

// fakeKubeconfig is the stdout of a `... kubeconfig get ...` command: loopback, port 1, never
// contacted (this double talks to no cluster).
const fakeKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: test-double
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
contexts:
- name: test-double
  context: {cluster: test-double, user: test-double}
current-context: test-double
users:
- name: test-double
  user: {token: test-double}
`

type double struct {
	pulumirpc.UnimplementedResourceProviderServer
}

func (double) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (double) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: fmt.Sprintf(`{"name": %q, "version": %q}`, pkg, version)}, nil
}

// Provider configuration: accepted as given, never a reason to replace the provider.
func (double) CheckConfig(_ context.Context, r *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: r.News}, nil
}
func (double) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}
func (double) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	// SupportsPreview false: the engine does not call Create/Update during previews.
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, AcceptResources: true, SupportsPreview: false, AcceptOutputs: true}, nil
}

// Check returns the inputs unchanged; a helm Release whose chart is an absolute local path
// fails like the real provider's "chart not found" when <chart>/Chart.yaml does not exist.
func (double) Check(_ context.Context, r *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	resp := &pulumirpc.CheckResponse{Inputs: r.News}
	if r.Type == "kubernetes:helm.sh/v3:Release" || strings.Contains(r.Urn, "::kubernetes:helm.sh/v3:Release::") {
		chart := r.GetNews().GetFields()["chart"].GetStringValue()
		if filepath.IsAbs(chart) {
			if _, err := os.Stat(filepath.Join(chart, "Chart.yaml")); err != nil {
				resp.Failures = append(resp.Failures, &pulumirpc.CheckFailure{Property: "chart",
					Reason: fmt.Sprintf("chart not found: %s (no Chart.yaml) [test double of pulumi-resource-%s]", chart, pkg)})
			}
		}
	}
	return resp, nil
}

// Diff reports the top-level input keys whose values differ (an unknown new value counts as
// changed), as UPDATEs; whether a change replaces is the engine's call (replaceOnChanges).
func (double) Diff(_ context.Context, r *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	opts := plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true}
	oldStruct := r.OldInputs
	if oldStruct == nil {
		oldStruct = r.Olds
	}
	olds, err := plugin.UnmarshalProperties(oldStruct, opts)
	if err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(r.News, opts)
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE, HasDetailedDiff: true,
		DetailedDiff: map[string]*pulumirpc.PropertyDiff{}}
	keys := map[resource.PropertyKey]bool{}
	for k := range olds {
		keys[k] = true
	}
	for k := range news {
		keys[k] = true
	}
	for k := range keys {
		o, inOld := olds[k]
		n, inNew := news[k]
		if inOld && inNew && !n.ContainsUnknowns() && o.DeepEquals(n) {
			continue
		}
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
		resp.Diffs = append(resp.Diffs, string(k))
		resp.DetailedDiff[string(k)] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE, InputDiff: true}
	}
	return resp, nil
}

// outputs = inputs, plus stdout/stderr for command:local:Command (a fake kubeconfig when the
// command is a `kubeconfig get`). Nothing is ever executed.
func outputs(typ string, inputs *structpb.Struct) *structpb.Struct {
	out := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	if inputs != nil {
		out = proto.Clone(inputs).(*structpb.Struct)
		if out.Fields == nil {
			out.Fields = map[string]*structpb.Value{}
		}
	}
	if typ == "command:local:Command" {
		stdout := ""
		if strings.Contains(out.Fields["create"].GetStringValue(), "kubeconfig get") {
			stdout = fakeKubeconfig
		}
		out.Fields["stdout"] = structpb.NewStringValue(stdout)
		out.Fields["stderr"] = structpb.NewStringValue("")
	}
	return out
}

func (double) Create(_ context.Context, r *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	urn := resource.URN(r.Urn)
	sum := sha256.Sum256([]byte(r.Urn))
	id := urn.Name() + "-" + hex.EncodeToString(sum[:4])
	return &pulumirpc.CreateResponse{Id: id, Properties: outputs(string(urn.Type()), r.Properties)}, nil
}
func (double) Read(_ context.Context, r *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: r.Id, Properties: r.Properties, Inputs: r.Inputs}, nil
}
func (double) Update(_ context.Context, r *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	return &pulumirpc.UpdateResponse{Properties: outputs(string(resource.URN(r.Urn).Type()), r.News)}, nil
}
func (double) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}
func (double) Invoke(context.Context, *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return &pulumirpc.InvokeResponse{Return: &structpb.Struct{}}, nil
}
func (double) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func main() {
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{Init: func(srv *grpc.Server) error {
		pulumirpc.RegisterResourceProviderServer(srv, double{})
		return nil
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port) // the engine reads the port from the first stdout line
	if err := <-handle.Done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
