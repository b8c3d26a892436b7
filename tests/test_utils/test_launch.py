"""Single-host gloo runs bind to the loopback interface."""
import os
import socket

import pytest

from mmtopo.utils.launch import bind_gloo_to_loopback

LOOPBACK = next(name for _, name in socket.if_nameindex()
                if name.startswith('lo'))


@pytest.mark.parametrize('master', ['127.0.0.1', 'localhost', None])
def test_single_host_binds_to_loopback(monkeypatch, master):
    monkeypatch.delenv('GLOO_SOCKET_IFNAME', raising=False)
    if master is None:
        monkeypatch.delenv('MASTER_ADDR', raising=False)
    else:
        monkeypatch.setenv('MASTER_ADDR', master)
    bind_gloo_to_loopback()
    assert os.environ['GLOO_SOCKET_IFNAME'] == LOOPBACK


def test_other_hosts_and_user_choice_are_left_alone(monkeypatch):
    monkeypatch.delenv('GLOO_SOCKET_IFNAME', raising=False)
    monkeypatch.setenv('MASTER_ADDR', '192.0.2.10')  # TEST-NET: another host
    bind_gloo_to_loopback()
    assert 'GLOO_SOCKET_IFNAME' not in os.environ

    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('GLOO_SOCKET_IFNAME', 'eth7')
    bind_gloo_to_loopback()
    assert os.environ['GLOO_SOCKET_IFNAME'] == 'eth7'
