"""The Region's coordinator: the Flower ServerApp that runs a granted study and writes its report."""
