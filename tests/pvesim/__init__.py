"""A Proxmox VE API simulator for the tests, held to Proxmox's real API schema (see README.md)."""

from tests.pvesim.auth import ROLES, totp_now
from tests.pvesim.cluster import Cluster, ExecAnswer, Guest, Node, Vm, load_cluster
from tests.pvesim.generate import generate_cluster, write_cluster
from tests.pvesim.server import ROOT_PASSWORD, Fault, PveSim, RequestRecord, Response

__all__ = [
    "ROLES",
    "ROOT_PASSWORD",
    "Cluster",
    "ExecAnswer",
    "Fault",
    "Guest",
    "Node",
    "PveSim",
    "RequestRecord",
    "Response",
    "Vm",
    "generate_cluster",
    "load_cluster",
    "totp_now",
    "write_cluster",
]
