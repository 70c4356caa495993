from glob import glob

from setuptools import setup

package_name = 'vtb_viz'

setup(
    name=package_name,
    version='0.1.0',
    packages=[],
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/rviz', glob('rviz/*.rviz')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='vtb maintainers',
    maintainer_email='vtb@example.org',
    description="vtb's RViz view (rviz/vtb.rviz), for rviz:=true.",
    license='Apache-2.0',
)
