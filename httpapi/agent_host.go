package httpapi

import (
	"bufio"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// /v1/agent/host: what `consul debug` collects about the machine. Consul
// gathers it with gopsutil; roster reports what the standard library and
// /proc tell without extra dependencies, in the same top-level shape
// (Memory, CPU, Host, Disk, CollectionTime, Errors), so clients that
// decode it into a map keep working. Fields it cannot read are omitted
// and named in Errors.

func (s *Server) agentHost(_ http.ResponseWriter, _ *http.Request, _ string) (any, error) {
	var errs []string
	hostname, err := os.Hostname()
	if err != nil {
		errs = append(errs, "hostname: "+err.Error())
	}
	cpus := make([]map[string]any, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = map[string]any{"cpu": int32(i), "cores": int32(1)}
	}
	mem := map[string]any{}
	if total, avail, err := readMeminfo("/proc/meminfo"); err != nil {
		errs = append(errs, "memory: "+err.Error())
	} else {
		mem["total"], mem["available"] = total, avail
		if total > 0 {
			mem["used"] = total - avail
			mem["usedPercent"] = float64(total-avail) * 100 / float64(total)
		}
	}
	return map[string]any{
		"Memory": mem,
		"CPU":    cpus,
		"Host": map[string]any{
			"hostname": hostname, "os": runtime.GOOS, "kernelArch": runtime.GOARCH,
			"platform": runtime.GOOS, "procs": uint64(runtime.NumGoroutine()),
		},
		"Disk":           map[string]any{},
		"CollectionTime": time.Now().UnixNano(),
		"Errors":         errs,
	}, nil
}

// readMeminfo reads MemTotal and MemAvailable (bytes) from a Linux
// /proc/meminfo; elsewhere the file is missing and the error says so.
func readMeminfo(path string) (total, avail uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for lines := 0; sc.Scan() && lines < 200; lines++ {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kib, perr := strconv.ParseUint(fields[1], 10, 64)
		if perr != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			total = kib * 1024
		case "MemAvailable:":
			avail = kib * 1024
		}
	}
	return total, avail, sc.Err()
}
