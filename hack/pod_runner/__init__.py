"""The local environment's pod runner: real processes for pods of runnable images on kwok nodes (the part of
the kubelet the local data plane needs), and ClusterIP forwarding. Never shipped (hack/ is build_ignore'd)."""
