import LadonCore
