module github.com/cilium/ebpf

go 1.26
