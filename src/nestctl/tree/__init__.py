"""`nestctl tree`: the layers of a nested lab, each with its readiness and first broken link.

- `views.py`: `TargetView`, one Proxmox target's facts as plain JSON-able data, from an API scan
  or from JSON brought back from inside a VM (whatever can describe a level can feed the tree).
- `build.py`: pure: ties inner targets to the outer VMs that run them (`parent = "T/VMID"`, or
  the VM's smbios1 uuid == the inner host's DMI product_uuid) and builds the tree.
- `render.py`: the text tree and the JSON contract.
"""
