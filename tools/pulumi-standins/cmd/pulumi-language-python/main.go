// Command pulumi-language-python is cnistack's STAND-IN for upstream's Python language host.
//
// Why it exists: upstream's host (module
// github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3) is not served by the Go
// module proxy reachable from this workplace, and get.pulumi.com / GitHub releases are
// unreachable. scripts/toolchain.sh builds this program against the same sdk module as the
// `pulumi` CLI it builds, and installs it as $TC/bin/pulumi-language-python ONLY when
// upstream's host cannot be fetched.
//
// What it does: Run starts pulumi-language-python-exec with the python of the program's
// runtime.options.virtualenv; RunPlugin(kind "analyzer") runs
// `python -m pulumi.policy ENGINE PACK_DIR` (python policy packs).
// What it does not do: no plugin discovery (plugins are preinstalled), no dependency
// installs, no codegen, no `pulumi about` details.
//
// Shutdown (docs/real-engine.md, "A failed update"): when an update fails, the engine closes
// its plugins by sending SIGINT to each plugin's process group, then SIGKILL after 5 s
// (sdk/go/common/resource/plugin/plugin.go, newPlugin's kill). A Python program still running
// in the host's group then dies in a KeyboardInterrupt, and its threads print tracebacks
// ("KeyboardInterrupt", "resource monitor shut down") around the real error. Upstream's host
// shares that group and also forwards SIGINT on cancellation (its Run sets cmd.Cancel to
// os.Interrupt). This host instead runs Python in a process group of its own and, when the
// engine cancels or interrupts it, ends the program with SIGTERM, which Python does not turn
// into a traceback: the update then shows the engine's own error once.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

var version = "0.0.0-cnistack-shim"

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engine string

	mu       sync.Mutex
	programs map[*exec.Cmd]struct{} // running Python programs, each in its own process group
}

// stopPrograms ends every running program quietly: SIGTERM to its process group, SIGKILL
// after 5 s (the engine's own grace period).
func (h *host) stopPrograms() {
	h.mu.Lock()
	cmds := make([]*exec.Cmd, 0, len(h.programs))
	for c := range h.programs {
		cmds = append(cmds, c)
	}
	h.mu.Unlock()
	for _, c := range cmds {
		if c.Process == nil {
			continue
		}
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		go func(pid int) {
			time.Sleep(5 * time.Second)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}(c.Process.Pid)
	}
}

// Cancel is the engine's request to stop gracefully (LanguageRuntime.Cancel).
func (h *host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.stopPrograms()
	return &emptypb.Empty{}, nil
}

func python(info *pulumirpc.ProgramInfo) (string, []string) {
	env := os.Environ()
	if info != nil && info.Options != nil {
		if v, ok := info.Options.AsMap()["virtualenv"].(string); ok && v != "" {
			if !filepath.IsAbs(v) {
				v = filepath.Join(info.RootDirectory, v)
			}
			env = append(env, "PULUMI_RUNTIME_VIRTUALENV="+v, "VIRTUAL_ENV="+v,
				"PATH="+filepath.Join(v, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
			return filepath.Join(v, "bin", "python"), env
		}
	}
	return "python3", env
}

func (h *host) Handshake(ctx context.Context, r *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engine = r.EngineAddress
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}
func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}
func (h *host) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}
func (h *host) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}
func (h *host) InstallDependencies(r *pulumirpc.InstallDependenciesRequest, s grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse]) error {
	return nil
}

func (h *host) Run(ctx context.Context, r *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	py, env := python(r.Info)
	execScript, err := exec.LookPath("pulumi-language-python-exec")
	if err != nil {
		return nil, err
	}
	if r.Config == nil {
		r.Config = map[string]string{}
	}
	if r.ConfigSecretKeys == nil {
		r.ConfigSecretKeys = []string{}
	}
	cfg, _ := json.Marshal(r.Config)
	keys, _ := json.Marshal(r.ConfigSecretKeys)
	env = append(env, "PULUMI_CONFIG="+string(cfg), "PULUMI_CONFIG_SECRET_KEYS="+string(keys))
	args := []string{"-u", execScript, "--monitor", r.MonitorAddress, "--engine", h.engine,
		"--project", r.Project, "--stack", r.Stack, "--pwd", r.Pwd,
		"--parallel", fmt.Sprint(r.Parallel), "--root_directory", r.Info.GetRootDirectory(), "--organization", r.Organization}
	if r.DryRun {
		args = append(args, "--dry_run", "true")
	}
	prog := r.Program
	if r.Info != nil && r.Info.EntryPoint != "" {
		prog = filepath.Join(r.Info.ProgramDirectory, r.Info.EntryPoint)
	}
	args = append(args, prog)
	args = append(args, r.Args...)
	cmd := exec.Command(py, args...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, r.Pwd, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.programs[cmd] = struct{}{}
	h.mu.Unlock()
	stop := context.AfterFunc(ctx, h.stopPrograms)
	err = cmd.Wait()
	stop()
	h.mu.Lock()
	delete(h.programs, cmd)
	h.mu.Unlock()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			if ee.ExitCode() == 32 {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			if ee.ExitCode() < 0 { // ended by a signal: the engine stopped it and reports why
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited with non-zero exit code: %d", ee.ExitCode())}, nil
		}
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

type sw struct {
	s      grpc.ServerStreamingServer[pulumirpc.RunPluginResponse]
	stderr bool
}

func (w sw) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	var m pulumirpc.RunPluginResponse
	if w.stderr {
		m.Output = &pulumirpc.RunPluginResponse_Stderr{Stderr: b}
	} else {
		m.Output = &pulumirpc.RunPluginResponse_Stdout{Stdout: b}
	}
	return len(p), w.s.Send(&m)
}

func (h *host) RunPlugin(r *pulumirpc.RunPluginRequest, s grpc.ServerStreamingServer[pulumirpc.RunPluginResponse]) error {
	py, env := python(r.Info)
	env = append(env, r.Env...)
	if r.Kind != "analyzer" {
		return fmt.Errorf("cnistack python language host shim: RunPlugin kind %q is not supported", r.Kind)
	}
	// pulumi/policy's python runner: python -m pulumi.policy ENGINE_ADDRESS PROGRAM_DIR
	args := append([]string{"-u", "-m", "pulumi.policy"}, r.Args...)
	args = append(args, r.Info.GetProgramDirectory())
	cmd := exec.Command(py, args...)
	cmd.Env, cmd.Dir = env, r.Pwd
	cmd.Stdout, cmd.Stderr = sw{s: s}, sw{s: s, stderr: true}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return err
	}
	return s.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(code)}})
}

func main() {
	h := &host{programs: map[*exec.Cmd]struct{}{}}
	// The engine closes plugins with SIGINT to the host's process group (see the package
	// comment): stop the programs quietly, then exit.
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-interrupts
		h.stopPrograms()
		os.Exit(0)
	}()
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-") {
			h.engine = a
		}
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{Init: func(srv *grpc.Server) error {
		pulumirpc.RegisterLanguageRuntimeServer(srv, h)
		return nil
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
